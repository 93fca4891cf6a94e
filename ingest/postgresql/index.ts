/**
 * The `postgresql` source: PostgreSQL's server log as `stderr`, `csvlog` or `jsonlog`. See docs/sources/postgresql.md.
 */
import type { LineParser } from '../common/parser.ts'
import { validatePostgresqlOptions } from './config.ts'
import { createPostgresqlParser, type PostgresqlFormat } from './parse.ts'

export const POSTGRESQL_FORMATS = ['stderr', 'csvlog', 'jsonlog'] as const

/** Builds the parser for `ingest.sources[]` of type `postgresql`; validates `options` without I/O. */
export function createPostgresqlSource (format: string | undefined, options: Readonly<Record<string, unknown>>): LineParser {
  return createPostgresqlParser((format ?? 'stderr') as PostgresqlFormat, validatePostgresqlOptions(options))
}

export { createPostgresqlParser, interpret, pgTime, splitCsv, type PgRecord, type PostgresqlFormat } from './parse.ts'
export { compilePrefix } from './prefix.ts'
export { DEFAULT_LOG_LINE_PREFIX, PostgresqlOptionsSchema, type PostgresqlOptions } from './config.ts'
