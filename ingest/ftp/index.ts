/**
 * FTP collectors (issue #3): the source types `vsftpd`, `proftpd` and `pure-ftpd`, each with the log
 * formats its server writes. All produce ECS events of class `ftp` (topic `audit.ftp.v1`); the fields
 * and what each server must be configured to log are in docs/sources/ftp.md.
 */
import { AuditError } from '../../lib/errors.ts'
import type { LineParser } from '../common/parser.ts'
import type { FtpServer } from './common.ts'
import { createXferlogParser } from './xferlog.ts'
import { createVsftpdParser } from './vsftpd.ts'
import { createProftpdParser } from './proftpd.ts'
import { createPureStatsParser, createPureSyslogParser } from './pureftpd.ts'

/** Formats per server; the first is the default (the one that covers the most of the TOM). */
export const FTP_FORMATS: Readonly<Record<FtpServer, readonly string[]>> = {
  // native: vsftpd_log_file (logins, every file operation); xferlog: transfers only.
  vsftpd: ['native', 'xferlog'],
  // extended: ExtendedLog in the auditline LogFormat (logins, every file operation); syslog: SystemLog
  // file or syslog (sessions, logins); xferlog: TransferLog (transfers and deletions).
  proftpd: ['extended', 'syslog', 'xferlog'],
  // syslog: logins, transfers, deletions, renames (+ mkdir, rmdir, failures with -d -d); stats and
  // xferlog: -O transfer logs (transfers only).
  'pure-ftpd': ['syslog', 'stats', 'xferlog']
}

/**
 * Builds the parser of an FTP source. The FTP sources take no options: any key under `options` is
 * refused, so that a typo cannot silently change nothing.
 */
export function createFtpParser (server: FtpServer, format: string | undefined, options: Readonly<Record<string, unknown>> = {}): LineParser {
  const unknown = Object.keys(options)
  if (unknown.length > 0) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`ingest.sources[].options.${unknown[0] as string}: source type ${server} takes no options`])
  }
  const f = format ?? FTP_FORMATS[server][0]
  if (!FTP_FORMATS[server].includes(f as string)) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`source type ${server} has no format "${String(f)}" (known: ${FTP_FORMATS[server].join(', ')})`])
  }
  if (f === 'xferlog') return createXferlogParser(server)
  switch (server) {
    case 'vsftpd': return createVsftpdParser()
    case 'proftpd': return createProftpdParser(f as 'extended' | 'syslog')
    case 'pure-ftpd': return f === 'stats' ? createPureStatsParser() : createPureSyslogParser()
  }
}

export type { FtpServer } from './common.ts'
