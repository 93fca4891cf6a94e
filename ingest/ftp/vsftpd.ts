/**
 * vsftpd's own log (`vsftpd_log_file`, written with `dual_log_enable=YES` next to the xferlog, or alone
 * with `xferlog_std_format=NO`). Pure apart from a bounded memory of each session's last RNTO argument.
 *
 *   Sun Nov 29 07:04:47 2026 [pid 14248] [alice] OK UPLOAD: Client "127.0.0.1", "/home/alice/f.txt", 11 bytes, 14.48Kbyte/sec
 *   Sun Nov 29 07:04:45 2026 [pid 14218] CONNECT: Client "::1"
 *   Sun Nov 29 07:04:46 2026 [pid 14221] [alice] FAIL LOGIN: Client "127.0.0.1"
 *   Sun Nov 29 07:04:47 2026 [pid 14248] [alice] OK RENAME: Client "127.0.0.1", "/home/alice/a /home/alice/b"
 *   Sun Nov 29 07:04:47 2026 [pid 14248] [alice] FTP command: Client "127.0.0.1", "RNTO b"   (log_ftp_protocol=YES)
 *
 * The `[pid N]` is the process that wrote the line; vsftpd logs a login from its privileged parent and
 * the session's file operations from the session process, so it is kept as `process.pid` and not
 * claimed as a session id. vsftpd prints a rename as one string "OLD NEW": where a path contains
 * " /" the split is ambiguous and the RNTO argument from the protocol log decides it.
 */
import { SKIP, parseError, type LineParser, type ParseResult } from '../common/parser.ts'
import { ftpEvent, parseCtime, SessionMemo, type FtpAction } from './common.ts'

const LINE = /^([A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2} \d{4}) \[pid (\d+)\] (?:\[([^\]]*)\] )?(.*)$/
const CLIENT = '"([^"]*)"'
const OP = new RegExp(`^(OK|FAIL) (UPLOAD|DOWNLOAD|DELETE|MKDIR|RMDIR|RENAME|CHMOD|LOGIN): Client ${CLIENT}(?:, (.*))?$`)
const PROTOCOL = new RegExp(`^FTP (command|response): Client ${CLIENT}, "(.*)"$`)

const ACTIONS: Readonly<Record<string, FtpAction>> = {
  UPLOAD: 'ftp_upload', DOWNLOAD: 'ftp_download', DELETE: 'ftp_delete', MKDIR: 'ftp_mkdir', RMDIR: 'ftp_rmdir', RENAME: 'ftp_rename', CHMOD: 'ftp_chmod', LOGIN: 'ftp_login'
}

/** `"path", 11 bytes, 14.48Kbyte/sec` (transfers) or `"path"`; the path itself may contain `"`. */
const TRANSFER_DETAIL = /^"(.*)", (\d+) bytes, [\d.]+Kbyte\/sec$/
const PATH_DETAIL = /^"(.*)"$/

export function createVsftpdParser (): LineParser {
  const rnto = new SessionMemo<string>()

  function renamePaths (pid: string, both: string): { from: string, to: string, ambiguous: boolean } {
    // Candidates: every " /" (both paths are absolute: vsftpd prefixes the session's cwd).
    const cuts: number[] = []
    for (let i = both.indexOf(' /'); i >= 0; i = both.indexOf(' /', i + 1)) cuts.push(i)
    const arg = rnto.take(pid)
    const split = (i: number): { from: string, to: string } => ({ from: both.slice(0, i), to: both.slice(i + 1) })
    if (cuts.length === 1) return { ...split(cuts[0] as number), ambiguous: false }
    if (arg !== undefined) {
      const fits = cuts.filter(i => { const to = both.slice(i + 1); return to === arg || to.endsWith('/' + arg) })
      if (fits.length === 1) return { ...split(fits[0] as number), ambiguous: false }
    }
    if (cuts.length === 0) return { from: both, to: '', ambiguous: true }
    // Without the protocol log, prefer the split that keeps both names in the same directory.
    const same = cuts.filter(i => dirname(both.slice(0, i)) === dirname(both.slice(i + 1)))
    return { ...split((same.length === 1 ? same[0] : cuts[0]) as number), ambiguous: same.length !== 1 }
  }

  return {
    dataset: 'vsftpd.native',
    eventClass: 'ftp',
    parse (line: string): ParseResult {
      const m = LINE.exec(line.trimEnd())
      if (m === null) return parseError('not a vsftpd.log line ("<ctime> [pid N] …" expected)')
      const timestamp = parseCtime(m[1] as string)
      if (timestamp === undefined) return parseError(`impossible vsftpd time "${m[1] as string}"`)
      const pid = m[2] as string
      const user = m[3]
      const body = m[4] as string
      const base = { timestamp, user, pid: Number(pid) }

      if (body.startsWith('CONNECT: Client ')) {
        const c = /^CONNECT: Client "([^"]*)"$/.exec(body)
        if (c === null) return parseError('vsftpd CONNECT line without client address')
        return { kind: 'event', event: ftpEvent({ ...base, action: 'ftp_connect', outcome: 'success', client: c[1], ftp: { server: 'vsftpd' } }) }
      }
      const p = PROTOCOL.exec(body)
      if (p !== null) {
        // Protocol log: only RNTO matters (it disambiguates the next RENAME line of this process).
        const cmd = /^RNTO (.+)$/i.exec(p[3] as string)
        if (p[1] === 'command' && cmd !== null) rnto.set(pid, cmd[1] as string)
        return SKIP
      }
      const o = OP.exec(body)
      if (o === null) {
        // DEBUG lines (debug_ssl) and anything vsftpd may add later carry nothing the TOM asks for.
        return /^(OK|FAIL) [A-Z]+:/.test(body) ? parseError(`unknown vsftpd operation "${body.slice(0, 40)}"`) : SKIP
      }
      const ok = o[1] === 'OK'
      const kind = o[2] as string
      const detail = o[4] ?? ''
      const action = ACTIONS[kind] as FtpAction
      const common = { ...base, action, outcome: ok ? 'success' as const : 'failure' as const, client: o[3] }
      if (kind === 'LOGIN') {
        // `OK LOGIN: Client "1.2.3.4", anon password "x"` for anonymous logins.
        const anon = /^anon password "(.*)"$/.exec(detail)
        return { kind: 'event', event: ftpEvent({ ...common, ftp: { server: 'vsftpd', ...(anon === null ? {} : { access_mode: 'anonymous' }) } }) }
      }
      if (kind === 'UPLOAD' || kind === 'DOWNLOAD') {
        const t = TRANSFER_DETAIL.exec(detail)
        if (t === null) return parseError(`vsftpd ${kind} line without "path", N bytes`)
        const bytes = Number(t[2])
        return {
          kind: 'event',
          event: ftpEvent({
            ...common,
            path: t[1],
            ...(ok ? { size: bytes } : {}),
            ftp: { server: 'vsftpd', direction: kind === 'UPLOAD' ? 'upload' : 'download', bytes }
          })
        }
      }
      const d = PATH_DETAIL.exec(detail)
      if (d === null) return parseError(`vsftpd ${kind} line without "path"`)
      if (kind === 'RENAME') {
        const r = renamePaths(pid, d[1] as string)
        return { kind: 'event', event: ftpEvent({ ...common, path: r.from, targetPath: r.to, ftp: { server: 'vsftpd', ...(r.ambiguous ? { rename_ambiguous: true } : {}) } }) }
      }
      if (kind === 'CHMOD') {
        // vsftpd logs "PATH MODE" (the mode the client asked for last).
        const c = /^(.*) ([0-7]{3,4})$/.exec(d[1] as string)
        return { kind: 'event', event: ftpEvent({ ...common, path: c === null ? d[1] : c[1], ftp: { server: 'vsftpd', command: 'SITE CHMOD', ...(c === null ? {} : { mode: c[2] }) } }) }
      }
      const dir = kind === 'MKDIR' || kind === 'RMDIR'
      return { kind: 'event', event: ftpEvent({ ...common, path: d[1], ...(dir ? { fileType: 'dir' } : {}), ftp: { server: 'vsftpd' } }) }
    }
  }
}

function dirname (p: string): string {
  const i = p.lastIndexOf('/')
  return i <= 0 ? '/' : p.slice(0, i)
}
