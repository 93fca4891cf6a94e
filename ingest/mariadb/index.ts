/**
 * The `mariadb-audit` source: MariaDB's server_audit plugin log file. See docs/sources/mariadb.md.
 */
import type { LineParser } from '../common/parser.ts'
import { validateMariadbOptions } from './config.ts'
import { createMariadbParser } from './parse.ts'

export const MARIADB_FORMATS = ['file'] as const

/** Builds the parser for `ingest.sources[]` of type `mariadb-audit`; validates `options` without I/O. */
export function createMariadbSource (_format: string | undefined, options: Readonly<Record<string, unknown>>): LineParser {
  return createMariadbParser(validateMariadbOptions(options))
}

export { createMariadbParser, splitQueryRest, unescapeAuditString } from './parse.ts'
export { MariadbOptionsSchema, type MariadbOptions } from './config.ts'
