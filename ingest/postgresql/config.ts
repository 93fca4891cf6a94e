/**
 * Options of the `postgresql` source (`ingest.sources[].options`).
 */
import { Type, type Static } from '@sinclair/typebox'
import { isZoneSetting } from '../common/zoned-time.ts'
import { invalidOption, validateSourceOptions } from '../common/source-options.ts'
import { compilePrefix } from './prefix.ts'

export const DEFAULT_LOG_LINE_PREFIX = '%m [%p] %q%u@%d %r '

export const PostgresqlOptionsSchema = Type.Object({
  /**
   * Format `stderr` only: the server's `log_line_prefix`, character for character (trailing blank included).
   * It must carry a time (`%m`, `%t` or `%n`) and should carry `%p`, `%u`, `%d` and `%r` (client address and
   * port). Example: `'%m [%p] %q%u@%d %r '` (the default).
   */
  logLinePrefix: Type.String({ default: DEFAULT_LOG_LINE_PREFIX, minLength: 1, maxLength: 256 }),
  /**
   * IANA zone of `log_timezone`, used to read zone abbreviations such as `CET`/`CEST` exactly. Not needed
   * with `log_timezone = 'UTC'` (recommended) or a zone PostgreSQL prints as a numeric offset. Example: `Europe/Berlin`.
   */
  timezone: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * Format `csvlog` only: longest CSV record (a statement with newlines spans several lines) held while its
   * lines arrive; a longer one becomes a `db_record_withheld` event. Example: `1048576`.
   */
  maxRecordBytes: Type.Integer({ default: 1048576, minimum: 1024, maximum: 67108864 })
}, { additionalProperties: false })

export type PostgresqlOptions = Static<typeof PostgresqlOptionsSchema>

export function validatePostgresqlOptions (raw: Readonly<Record<string, unknown>>): PostgresqlOptions {
  const o = validateSourceOptions<PostgresqlOptions>(PostgresqlOptionsSchema, raw)
  if (o.timezone !== undefined && (!isZoneSetting(o.timezone) || o.timezone === 'local')) invalidOption('timezone', `"${o.timezone}" is not UTC, an offset like +01:00 or an IANA zone name`)
  try {
    compilePrefix(o.logLinePrefix)
  } catch (err) {
    invalidOption('logLinePrefix', (err as Error).message)
  }
  return o
}
