/**
 * The source registry: which parser and which topic each `type` of source uses.
 */
import type { TopicKey } from '../lib/topics.ts'
import { AuditError } from '../lib/errors.ts'
import type { LineParser } from './common/parser.ts'
import type { LineHandler, ToMessage } from './common/collector.ts'
import type { SourceConfig } from './config.ts'
import { createSshdParser, type SshdFormat } from './sshd/parse.ts'
import { createFtpParser, FTP_FORMATS } from './ftp/index.ts'
import { createMariadbSource, MARIADB_FORMATS } from './mariadb/index.ts'
import { createPostgresqlSource, POSTGRESQL_FORMATS } from './postgresql/index.ts'
import { createWebAccessToMessage, WEB_ACCESS_FORMATS } from './web-access/index.ts'

interface SourceType {
  topic: TopicKey
  formats: readonly string[]
  /** Builds the parser; validates `options` (throw AUD_ERR_CONFIG_INVALID naming the option) without I/O. */
  create?: (format: string | undefined, options: Readonly<Record<string, unknown>>) => LineParser
  /**
   * Instead of `create`, for records that are not audit events: the source's own line → Kafka message step
   * (ToMessage in common/collector.ts: own record schema, own key). Validates `options` like `create`.
   */
  toMessage?: (format: string | undefined, options: Readonly<Record<string, unknown>>) => ToMessage
  /** Its lines hold visitor IPs: dead letters keep reason and position, not the line (design §4). */
  restricted?: boolean
}

export const SOURCES: Readonly<Record<SourceConfig['type'], SourceType>> = {
  sshd: { topic: 'sshd', formats: ['syslog', 'journal', 'sshd-e'], create: f => createSshdParser((f ?? 'syslog') as SshdFormat) },
  vsftpd: { topic: 'ftp', formats: FTP_FORMATS.vsftpd, create: (f, o) => createFtpParser('vsftpd', f, o) },
  proftpd: { topic: 'ftp', formats: FTP_FORMATS.proftpd, create: (f, o) => createFtpParser('proftpd', f, o) },
  'pure-ftpd': { topic: 'ftp', formats: FTP_FORMATS['pure-ftpd'], create: (f, o) => createFtpParser('pure-ftpd', f, o) },
  'mariadb-audit': { topic: 'db', formats: MARIADB_FORMATS, create: createMariadbSource },
  postgresql: { topic: 'db', formats: POSTGRESQL_FORMATS, create: createPostgresqlSource },
  'web-access': { topic: 'webRaw', formats: WEB_ACCESS_FORMATS, toMessage: createWebAccessToMessage, restricted: true }
}

function sourceType (type: string, format: string | undefined): SourceType {
  const s = (SOURCES as Record<string, SourceType | undefined>)[type]
  if (s === undefined) throw new AuditError('AUD_ERR_INGEST_SOURCE_UNKNOWN', [type, Object.keys(SOURCES).join(', ')])
  if (format !== undefined && !s.formats.includes(format)) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`source type ${type} has no format "${format}" (known: ${s.formats.join(', ')})`])
  }
  return s
}

/** The audit-event parser of a source type (not for sources with their own `toMessage`: use handlerFor). */
export function parserFor (type: string, format?: string, options: Readonly<Record<string, unknown>> = {}): { parser: LineParser, topic: TopicKey } {
  const s = sourceType(type, format)
  if (s.create === undefined) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`source type ${type} writes its own records (topic ${s.topic}), not audit events: it has no event parser`])
  return { parser: s.create(format, options), topic: s.topic }
}

/** How the collector turns a source's lines into Kafka messages, and the topic they go to. */
export function handlerFor (type: string, format?: string, options: Readonly<Record<string, unknown>> = {}): LineHandler & { topic: TopicKey } {
  const s = sourceType(type, format)
  if (s.toMessage !== undefined) return { toMessage: s.toMessage(format, options), restricted: s.restricted === true, topic: s.topic }
  return parserFor(type, format, options)
}
