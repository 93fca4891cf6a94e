/**
 * proftpd logs. Pure.
 *
 * `extended`: an ExtendedLog in the auditline LogFormat (docs/sources/ftp.md), 12 tab-separated fields:
 *
 *   LogFormat auditline "%{iso8601}%{%z}t\t%a\t%U\t%u\t%m\t%f\t%w\t%b\t%s\t%{transfer-status}\t%P\t%{protocol}"
 *   ExtendedLog /var/log/proftpd/auditline.log ALL auditline
 *
 *   time (local, ms, then UTC offset) · client IP · user as sent (USER) · authenticated user · command ·
 *   path (absolute; the new name for RNTO) · RNFR path · bytes · reply code · transfer status · session pid · protocol
 *
 * `syslog`: proftpd's session messages (they need `SyslogLevel info` or lower), either in its SystemLog
 * file (`2026-11-29 07:06:50,870 host proftpd[17570] 127.0.0.1 (client[ip]): msg`, local time without
 * zone) or through syslog (`… host proftpd[17570]: 127.0.0.1 (client[ip]) - msg`, any header
 * ingest/common/syslog.ts reads).
 *
 * proftpd serves each session in one process, so its pid is the session id (`ftp.session_id`).
 */
import { parseSyslog } from '../common/syslog.ts'
import { SKIP, parseError, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'
import { ftpEvent, localIso, type FtpAction } from './common.ts'

export const PROFTPD_LOGFORMAT = '%{iso8601}%{%z}t\\t%a\\t%U\\t%u\\t%m\\t%f\\t%w\\t%b\\t%s\\t%{transfer-status}\\t%P\\t%{protocol}'

const TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),(\d{3})([+-])(\d{2})(\d{2})$/

/** Commands that change or read files, by their ExtendedLog name (`%m`). */
const FILE_COMMANDS: Readonly<Record<string, FtpAction>> = {
  STOR: 'ftp_upload',
  STOU: 'ftp_upload',
  APPE: 'ftp_upload',
  RETR: 'ftp_download',
  DELE: 'ftp_delete',
  RNFR: 'ftp_rename',
  RNTO: 'ftp_rename',
  MKD: 'ftp_mkdir',
  XMKD: 'ftp_mkdir',
  RMD: 'ftp_rmdir',
  XRMD: 'ftp_rmdir',
  'SITE CHMOD': 'ftp_chmod'
}

const dash = (s: string | undefined): string | undefined => s === undefined || s === '-' || s === '' ? undefined : s
const num = (s: string | undefined): number | undefined => s === undefined || !/^\d+$/.test(s) ? undefined : Number(s)

function extendedTime (s: string): string | undefined {
  const m = TIME.exec(s)
  if (m === null) return undefined
  const iso = `${m[1] as string}-${m[2] as string}-${m[3] as string}T${m[4] as string}:${m[5] as string}:${m[6] as string}.${m[7] as string}${m[8] as string}${m[9] as string}:${m[10] as string}`
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

export function parseProftpdExtended (line: string): ParseResult {
  const f = line.replace(/\r?\n$/, '').split('\t')
  if (f.length !== 12) return parseError(`expected 12 tab-separated fields of the auditline LogFormat, got ${f.length}`)
  const [time, ip, sentUser, user, method, path, from, bytesF, codeF, status, pidF, protocol] = f as [string, string, string, string, string, string, string, string, string, string, string, string]
  const timestamp = extendedTime(time)
  if (timestamp === undefined) return parseError(`ExtendedLog time "${time}" is not "%{iso8601}%{%z}t"`)
  const code = num(codeF)
  if (code === undefined) return parseError(`ExtendedLog reply code "${codeF}" is not a number`)
  const pid = num(pidF)
  const cmd = method.toUpperCase()
  const ok = code < 400
  const ftp = {
    server: 'proftpd' as const,
    command: cmd,
    response_code: code,
    ...(pid === undefined ? {} : { session_id: String(pid) }),
    ...(dash(protocol) === undefined || protocol === 'ftp' ? {} : { protocol })
  }
  const base = { timestamp, client: ip, pid }
  if (cmd === 'PASS') {
    // Reply 230 is a login; 530 a refused one (%u is "-" then: the name the client sent is in %U).
    if (code !== 230 && code < 500) return SKIP
    return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_login', outcome: ok ? 'success' : 'failure', user: dash(user) ?? dash(sentUser), ftp }) }
  }
  const action = FILE_COMMANDS[cmd]
  if (action === undefined) return SKIP
  // RNFR only prepares a rename (RNTO logs both names); a refused RNFR is a failed rename.
  if (cmd === 'RNFR' && ok) return SKIP
  const bytes = num(bytesF)
  const transferFailed = status === 'failed' || status === 'cancelled' || status === 'timeout'
  const outcome = ok && !transferFailed ? 'success' : 'failure'
  const isTransfer = action === 'ftp_upload' || action === 'ftp_download'
  return {
    kind: 'event',
    event: ftpEvent({
      ...base,
      action,
      outcome,
      user: dash(user) ?? dash(sentUser),
      path: cmd === 'RNTO' ? dash(from) : dash(path),
      targetPath: cmd === 'RNTO' ? dash(path) : undefined,
      fileType: action === 'ftp_mkdir' || action === 'ftp_rmdir' ? 'dir' : undefined,
      // %b of a DELE is the size of the deleted file; of a transfer, the bytes moved.
      size: outcome === 'success' && (isTransfer || action === 'ftp_delete') ? bytes : undefined,
      ftp: {
        ...ftp,
        ...(isTransfer ? { direction: action === 'ftp_upload' ? 'upload' : 'download', ...(bytes === undefined ? {} : { bytes }) } : {}),
        ...(dash(status) === undefined ? {} : { transfer_status: status })
      }
    })
  }
}

const SYSTEMLOG = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}),(\d{3}) (\S+) (proftpd)\[(\d+)\] (.*)$/s
/** `SERVER-ADDR (CLIENT-NAME[CLIENT-IP]): msg` (SystemLog) or `… - msg` (syslog). */
const SESSION = /^(\S+) \((.*)\[([^\]]*)\]\)(?:: | - )(.*)$/s

function sessionMessage (timestamp: string, pid: string | undefined, body: string): ParseResult {
  const s = SESSION.exec(body)
  // Daemon messages (STARTUP, SHUTDOWN, config warnings) have no client part.
  if (s === null) return SKIP
  const client = s[3] as string
  const msg = s[4] as string
  const base = { timestamp, client, pid: pid === undefined ? undefined : Number(pid) }
  const ftp = { server: 'proftpd' as const, ...(pid === undefined ? {} : { session_id: pid }) }
  let m: RegExpExecArray | null
  if (msg === 'FTP session opened.') return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_connect', outcome: 'success', ftp }) }
  if (msg === 'FTP session closed.') return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_disconnect', outcome: 'success', ftp }) }
  if ((m = /^(USER|ANON) (.+?): Login successful\.$/.exec(msg)) !== null) {
    return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_login', outcome: 'success', user: m[2], ftp: { ...ftp, ...(m[1] === 'ANON' ? { access_mode: 'anonymous' } : {}) } }) }
  }
  if ((m = /^USER (.+?) \(Login failed\): (.*)$/.exec(msg)) !== null) {
    return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_login', outcome: 'failure', user: m[1], reason: m[2], ftp }) }
  }
  if ((m = /^USER (.+?): no such user found from /.exec(msg)) !== null) {
    return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_login', outcome: 'failure', user: m[1], reason: 'no such user', ftp }) }
  }
  return SKIP
}

export function parseProftpdSyslog (line: string, ctx: LineContext): ParseResult {
  const t = line.trimEnd()
  const s = SYSTEMLOG.exec(t)
  if (s !== null) {
    // SystemLog: local time without zone, read in the collector's zone.
    const ts = localIso(Number(s[1]), Number(s[2]) - 1, Number(s[3]), Number(s[4]), Number(s[5]), Number(s[6]), Number(s[7]))
    if (ts === undefined) return parseError('impossible proftpd SystemLog time')
    return withHost(sessionMessage(ts, s[10], s[11] as string), s[8] as string, 'proftpd', s[10])
  }
  const h = parseSyslog(t, ctx.readAt)
  if (h === undefined) return parseError('neither a proftpd SystemLog line nor a syslog line')
  // A shared syslog file carries other programs' lines too.
  if (h.appname !== 'proftpd') return SKIP
  return withHost(sessionMessage(h.timestamp, h.procid, h.message), h.hostname, h.appname, h.procid)
}

function withHost (r: ParseResult, hostname: string, appname: string, procid: string | undefined): ParseResult {
  if (r.kind !== 'event') return r
  r.event.host = { hostname }
  r.event.log = { syslog: { hostname, appname, ...(procid === undefined ? {} : { procid }) } }
  return r
}

export function createProftpdParser (format: 'extended' | 'syslog'): LineParser {
  return format === 'extended'
    ? { dataset: 'proftpd.extended', eventClass: 'ftp', parse: line => parseProftpdExtended(line) }
    : { dataset: 'proftpd.syslog', eventClass: 'ftp', parse: (line, ctx) => parseProftpdSyslog(line, ctx) }
}
