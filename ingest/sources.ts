/**
 * The source registry: which parser and which topic each `type` of source uses.
 */
import type { TopicKey } from '../lib/topics.ts'
import { AuditError } from '../lib/errors.ts'
import type { LineParser } from './common/parser.ts'
import type { SourceConfig } from './config.ts'
import { createSshdParser, type SshdFormat } from './sshd/parse.ts'
import { createFtpParser, FTP_FORMATS } from './ftp/index.ts'
import { createMariadbSource, MARIADB_FORMATS } from './mariadb/index.ts'
import { createPostgresqlSource, POSTGRESQL_FORMATS } from './postgresql/index.ts'

interface SourceType {
  topic: TopicKey
  formats: readonly string[]
  /** Builds the parser; validates `options` (throw AUD_ERR_CONFIG_INVALID naming the option) without I/O. */
  create: (format: string | undefined, options: Readonly<Record<string, unknown>>) => LineParser
}

export const SOURCES: Readonly<Record<SourceConfig['type'], SourceType>> = {
  sshd: { topic: 'sshd', formats: ['syslog', 'journal', 'sshd-e'], create: f => createSshdParser((f ?? 'syslog') as SshdFormat) },
  vsftpd: { topic: 'ftp', formats: FTP_FORMATS.vsftpd, create: (f, o) => createFtpParser('vsftpd', f, o) },
  proftpd: { topic: 'ftp', formats: FTP_FORMATS.proftpd, create: (f, o) => createFtpParser('proftpd', f, o) },
  'pure-ftpd': { topic: 'ftp', formats: FTP_FORMATS['pure-ftpd'], create: (f, o) => createFtpParser('pure-ftpd', f, o) },
  'mariadb-audit': { topic: 'db', formats: MARIADB_FORMATS, create: createMariadbSource },
  postgresql: { topic: 'db', formats: POSTGRESQL_FORMATS, create: createPostgresqlSource }
}

export function parserFor (type: string, format?: string, options: Readonly<Record<string, unknown>> = {}): { parser: LineParser, topic: TopicKey } {
  const s = (SOURCES as Record<string, SourceType | undefined>)[type]
  if (s === undefined) throw new AuditError('AUD_ERR_INGEST_SOURCE_UNKNOWN', [type, Object.keys(SOURCES).join(', ')])
  if (format !== undefined && !s.formats.includes(format)) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`source type ${type} has no format "${format}" (known: ${s.formats.join(', ')})`])
  }
  return { parser: s.create(format, options), topic: s.topic }
}
