/**
 * Options of the `mariadb-audit` source (`ingest.sources[].options`).
 */
import { Type, type Static } from '@sinclair/typebox'
import { isZoneSetting } from '../common/zoned-time.ts'
import { invalidOption, validateSourceOptions } from '../common/source-options.ts'

export const MariadbOptionsSchema = Type.Object({
  /**
   * Time zone of the server_audit timestamps, which carry none (`20261129 07:05:41` is the server's local
   * time): `local` (default: the collector's own zone, right when it runs on the database host), `UTC`, a
   * fixed offset, or an IANA name. Example: `Europe/Berlin`.
   */
  timezone: Type.String({ default: 'local', minLength: 1 })
}, { additionalProperties: false })

export type MariadbOptions = Static<typeof MariadbOptionsSchema>

export function validateMariadbOptions (raw: Readonly<Record<string, unknown>>): MariadbOptions {
  const o = validateSourceOptions<MariadbOptions>(MariadbOptionsSchema, raw)
  if (!isZoneSetting(o.timezone)) invalidOption('timezone', `"${o.timezone}" is not local, UTC, an offset like +01:00 or an IANA zone name`)
  return o
}
