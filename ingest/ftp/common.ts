/**
 * What the FTP parsers share: the event shapes (ECS categorization per action), client address
 * handling, local-time stamps without zone, and a small bounded per-session memory for the two formats
 * that spread one operation over several lines (vsftpd's protocol log, pure-ftpd's `-d -d` syslog).
 * Pure apart from that memory, which only ever adds detail (see SessionMemo).
 */
import { isIP } from 'node:net'
import type { EventDraft } from '../common/parser.ts'

export type FtpServer = 'vsftpd' | 'proftpd' | 'pure-ftpd'

export type FtpAction = 'ftp_login' | 'ftp_upload' | 'ftp_download' | 'ftp_delete' | 'ftp_rename' | 'ftp_mkdir' | 'ftp_rmdir' |
  'ftp_chmod' | 'ftp_connect' | 'ftp_disconnect'

/** ECS `event.category` and `event.type` of each action (outcome failure keeps the type; logins add `denied`). */
const CATEGORIZATION: Readonly<Record<FtpAction, { category: string[], type: string[] }>> = {
  ftp_login: { category: ['authentication'], type: ['start'] },
  ftp_upload: { category: ['file'], type: ['creation'] },
  ftp_download: { category: ['file'], type: ['access'] },
  ftp_delete: { category: ['file'], type: ['deletion'] },
  ftp_rename: { category: ['file'], type: ['change'] },
  ftp_mkdir: { category: ['file'], type: ['creation'] },
  ftp_rmdir: { category: ['file'], type: ['deletion'] },
  ftp_chmod: { category: ['file'], type: ['change'] },
  ftp_connect: { category: ['network'], type: ['connection', 'start'] },
  ftp_disconnect: { category: ['network'], type: ['connection', 'end'] }
}

/** Custom `ftp.*` fields (docs/sources/ftp.md); all optional but `server`. */
export interface FtpFields {
  server: FtpServer
  /** FTP command that caused the event, upper case (`STOR`, `RNTO`, `SITE CHMOD`), where the log names it. */
  command?: string
  /** `binary` or `ascii` (xferlog). */
  transfer_mode?: string
  /** `upload`, `download` or `delete` (xferlog direction), for transfers. */
  direction?: string
  /** Bytes transferred (upload/download), or the size of a deleted file where logged. */
  bytes?: number
  /** Identifies the FTP session in the server's own terms (proftpd/pure-ftpd: session process id; pure-ftpd stats: `start.pid`). */
  session_id?: string
  /** `real`, `guest` or `anonymous` (xferlog access mode). */
  access_mode?: string
  /** FTP reply code the server sent, where logged. */
  response_code?: number
  /** Transfer duration in seconds, where logged. */
  duration_s?: number
  [k: string]: string | number | boolean | undefined
}

export interface FtpEventInput {
  timestamp: string
  action: FtpAction
  outcome: 'success' | 'failure' | 'unknown'
  ftp: FtpFields
  user?: string | undefined
  /** Client address as logged: an IP (IPv4, IPv6, IPv4-mapped IPv6) or a host name. */
  client?: string | undefined
  path?: string | undefined
  targetPath?: string | undefined
  size?: number | undefined
  /** `dir` for mkdir/rmdir. */
  fileType?: string | undefined
  pid?: number | undefined
  reason?: string | undefined
}

/** Builds the event draft of one FTP action. */
export function ftpEvent (i: FtpEventInput): EventDraft {
  const c = CATEGORIZATION[i.action]
  const type = i.action === 'ftp_login' && i.outcome === 'failure' ? [...c.type, 'denied'] : [...c.type]
  const draft: EventDraft = {
    '@timestamp': i.timestamp,
    event: {
      kind: 'event',
      category: [...c.category],
      type,
      action: i.action,
      outcome: i.outcome,
      module: i.ftp.server,
      ...(i.reason === undefined || i.reason === '' ? {} : { reason: i.reason })
    },
    ftp: Object.fromEntries(Object.entries(i.ftp).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string | number | boolean>,
    process: { name: i.ftp.server, ...(i.pid === undefined ? {} : { pid: i.pid }) }
  }
  if (i.user !== undefined && i.user !== '' && i.user !== '-') draft.user = { name: i.user }
  const source = sourceOf(i.client)
  if (source !== undefined) draft.source = source
  if (i.path !== undefined || i.targetPath !== undefined || i.size !== undefined || i.fileType !== undefined) {
    draft.file = {
      ...(i.path === undefined || i.path === '' ? {} : { path: i.path }),
      ...(i.targetPath === undefined || i.targetPath === '' ? {} : { target_path: i.targetPath }),
      ...(i.size === undefined ? {} : { size: i.size }),
      ...(i.fileType === undefined ? {} : { type: i.fileType })
    }
  }
  return draft
}

/**
 * `source.ip` for an address (IPv4-mapped IPv6 such as `::ffff:192.0.2.1`, which dual-stack listeners
 * log, becomes the plain IPv4 address so that one search finds every session of a client);
 * `source.domain` for a host name (servers that resolve client names).
 */
export function sourceOf (client: string | undefined): EventDraft['source'] | undefined {
  if (client === undefined || client === '' || client === '-' || client === '?') return undefined
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(client)
  if (mapped !== null) return { ip: mapped[1] as string }
  const bare = client.replace(/^\[(.*)\]$/, '$1')
  if (isIP(bare) !== 0) return { ip: bare }
  return { domain: client, address: client }
}

const MONTHS: Readonly<Record<string, number>> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 }

/**
 * `Sun Nov 29 07:04:47 2026` (ctime form, as in xferlog and vsftpd.log): local time of the FTP server
 * without a zone. Read in the collector process's local zone (run the collector in the FTP host's zone,
 * e.g. TZ=Europe/Berlin), like RFC 3164 syslog stamps. Undefined for an impossible date.
 */
export function parseCtime (s: string): string | undefined {
  const m = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(s)
  if (m === null) return undefined
  return localIso(Number(m[6]), MONTHS[m[1] as string], Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), 0)
}

/** A wall-clock time in the collector's local zone as ISO 8601 UTC; undefined when it does not exist. */
export function localIso (y: number, month: number | undefined, d: number, h: number, mi: number, s: number, ms: number): string | undefined {
  if (month === undefined || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined
  const t = new Date(y, month, d, h, mi, s, ms)
  if (Number.isNaN(t.getTime()) || t.getDate() !== d) return undefined
  return t.toISOString()
}

/** Collapses the doubled leading slash pure-ftpd prints (`//home/u/f` → `/home/u/f`). */
export function cleanPath (p: string): string {
  return p.replace(/^\/{2,}/, '/')
}

/**
 * A bounded memory of the last command of each session (keyed by process id), for logs that print an
 * operation's path and its outcome on different lines. Only adds detail: when a collector restarts
 * between the two lines, the event is still emitted, without the detail. Oldest sessions are forgotten
 * first, so memory stays bounded however many sessions never log their end.
 */
export class SessionMemo<T> {
  private readonly map = new Map<string, T>()
  constructor (private readonly max = 10_000) {}

  set (key: string, value: T): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string)
  }

  get (key: string): T | undefined { return this.map.get(key) }

  take (key: string): T | undefined {
    const v = this.map.get(key)
    this.map.delete(key)
    return v
  }

  delete (key: string): void { this.map.delete(key) }
}
