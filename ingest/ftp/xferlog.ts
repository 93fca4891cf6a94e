/**
 * The wu-ftpd transfer log format ("xferlog"), written by vsftpd (`xferlog_std_format=YES`), proftpd
 * (`TransferLog`) and pure-ftpd (`-O xferlog:FILE`). Pure.
 *
 *   Sun Nov 29 07:04:47 2026 1 127.0.0.1 11 /home/u/up.txt b _ i r u ftp 0 * c
 *   current-time transfer-time remote-host file-size filename transfer-type special-action-flag
 *   direction access-mode username service-name authentication-method authenticated-user-id completion-status
 *
 * The file name may contain spaces (vsftpd keeps them; proftpd and pure-ftpd write `_`), so the line is
 * read from both ends: the fields after the name are fixed. The time is local time without a zone (see
 * parseCtime). proftpd also logs deletions here (direction `d`); logins, renames and directories never
 * appear in an xferlog.
 */
import { SKIP, parseError, type LineParser, type ParseResult } from '../common/parser.ts'
import { ftpEvent, parseCtime, type FtpServer } from './common.ts'

const XFERLOG = /^([A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4}) (\d+) (\S+) (\d+) (.+) ([ab]) (\S+) ([iod]) ([agr]) (\S+) (\S+) ([01]) (\S+) ([ci])$/

const DIRECTION = { i: 'upload', o: 'download', d: 'delete' } as const
const ACTION = { i: 'ftp_upload', o: 'ftp_download', d: 'ftp_delete' } as const
const ACCESS = { a: 'anonymous', g: 'guest', r: 'real' } as const

export function parseXferlog (server: FtpServer, line: string): ParseResult {
  const m = XFERLOG.exec(line.trimEnd())
  if (m === null) {
    // An empty or header-like line carries nothing; anything else claims to be a transfer and is not.
    return line.trim() === '' ? SKIP : parseError('not an xferlog line (time, duration, host, size, name, type, flag, direction, access, user, service, auth, id, status expected)')
  }
  const timestamp = parseCtime(m[1] as string)
  if (timestamp === undefined) return parseError(`impossible xferlog time "${m[1] as string}"`)
  const dir = m[8] as keyof typeof DIRECTION
  const complete = m[14] === 'c'
  const bytes = Number(m[4])
  return {
    kind: 'event',
    event: ftpEvent({
      timestamp,
      action: ACTION[dir],
      outcome: complete ? 'success' : 'failure',
      user: m[10],
      client: m[3],
      path: m[5],
      // A complete transfer moved the whole file; an incomplete one says only how many bytes it moved.
      size: complete ? bytes : undefined,
      ...(complete ? {} : { reason: 'transfer incomplete' }),
      ftp: {
        server,
        direction: DIRECTION[dir],
        transfer_mode: m[6] === 'a' ? 'ascii' : 'binary',
        bytes,
        duration_s: Number(m[2]),
        access_mode: ACCESS[m[9] as keyof typeof ACCESS]
      }
    })
  }
}

export function createXferlogParser (server: FtpServer): LineParser {
  return {
    dataset: `${server}.xferlog`,
    eventClass: 'ftp',
    parse: line => parseXferlog(server, line)
  }
}
