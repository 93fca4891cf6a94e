/**
 * pure-ftpd logs. Pure apart from a bounded memory of each session's last command (`syslog` only).
 *
 * `stats`: the transfer log of `-O stats:FILE` (AltLog stats:…), UTC epoch seconds, so no zone question:
 *   1795935956 6b0bced4.3e29 alice 127.0.0.1 U 11 0 /home/alice/up.txt
 *   <unix time> <session start hex>.<pid hex> <user> <client> <U|D> <bytes> <seconds> <path>
 *
 * `syslog`: pure-ftpd's syslog lines (any header ingest/common/syslog.ts reads):
 *   pure-ftpd[16231]: (alice@127.0.0.1) [INFO] alice is now logged in
 *   pure-ftpd[16231]: (alice@127.0.0.1) [NOTICE] //home/alice/up.txt uploaded  (11 bytes, 26.71KB/sec)
 *   pure-ftpd[16231]: (alice@127.0.0.1) [DEBUG] Command [mkd] [dir]          (-d)
 *   pure-ftpd[16231]: (alice@127.0.0.1) [DEBUG] 257 "dir" : The directory …   (-d -d)
 * Logins, uploads, downloads, deletions and renames are logged at every verbosity. mkdir, rmdir, chmod
 * and failed operations appear only as commands and replies, i.e. with `-d -d` (VerboseLog twice): the
 * reply to a remembered command becomes the event. `-1` (LogPID) adds the `[pid]` that keys the memory;
 * without it the `user@client` prefix does, which is ambiguous for parallel sessions of one user.
 */
import { parseSyslog } from '../common/syslog.ts'
import { SKIP, parseError, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'
import { cleanPath, ftpEvent, SessionMemo, type FtpAction, type FtpEventInput } from './common.ts'

const STATS = /^(\d{9,11}) ([0-9a-f]+)\.([0-9a-f]+) (\S+) (\S+) ([UD]) (\d+) (\d+) (.+)$/

export function parsePureStats (line: string): ParseResult {
  const m = STATS.exec(line.trimEnd())
  if (m === null) return line.trim() === '' ? SKIP : parseError('not a pure-ftpd stats line (<time> <start>.<pid> <user> <host> <U|D> <size> <duration> <file> expected)')
  const up = m[6] === 'U'
  const bytes = Number(m[7])
  return {
    kind: 'event',
    event: ftpEvent({
      timestamp: new Date(Number(m[1]) * 1000).toISOString(),
      action: up ? 'ftp_upload' : 'ftp_download',
      outcome: 'success',
      user: m[4],
      client: m[5],
      path: cleanPath(m[9] as string),
      size: bytes,
      pid: parseInt(m[3] as string, 16),
      ftp: { server: 'pure-ftpd', direction: up ? 'upload' : 'download', bytes, duration_s: Number(m[8]), session_id: `${m[2] as string}.${m[3] as string}` }
    })
  }
}

const PREFIX = /^\((.*?)@([^)]*)\) \[(DEBUG|INFO|NOTICE|WARNING|ERROR)\] (.*)$/s

/** Commands whose replies make events (with -d -d), by the lower-case name pure-ftpd logs. */
const REPLY_ACTIONS: Readonly<Record<string, FtpAction>> = {
  stor: 'ftp_upload',
  stou: 'ftp_upload',
  appe: 'ftp_upload',
  retr: 'ftp_download',
  dele: 'ftp_delete',
  rnfr: 'ftp_rename',
  rnto: 'ftp_rename',
  mkd: 'ftp_mkdir',
  xmkd: 'ftp_mkdir',
  rmd: 'ftp_rmdir',
  xrmd: 'ftp_rmdir',
  'site chmod': 'ftp_chmod'
}

interface Pending { cmd: string, arg: string, from?: string }

export function createPureSyslogParser (): LineParser {
  const memo = new SessionMemo<Pending>()

  function message (timestamp: string, pid: string | undefined, body: string): ParseResult {
    const p = PREFIX.exec(body)
    if (p === null) return SKIP // startup messages and the like
    const who = p[1] === '?' ? undefined : p[1]
    const client = p[2] as string
    const level = p[3] as string
    const msg = p[4] as string
    const key = pid ?? `${p[1] as string}@${client}`
    const ev = (i: Omit<FtpEventInput, 'timestamp' | 'client' | 'pid' | 'ftp' | 'user'> & { user?: string | undefined, ftp?: Partial<FtpEventInput['ftp']> }): ParseResult => ({
      kind: 'event',
      event: ftpEvent({
        ...i,
        timestamp,
        client,
        user: i.user ?? who,
        pid: pid === undefined ? undefined : Number(pid),
        ftp: { server: 'pure-ftpd', ...(pid === undefined ? {} : { session_id: pid }), ...i.ftp }
      })
    })
    let m: RegExpExecArray | null
    if (level === 'DEBUG') {
      if ((m = /^Command \[([a-z]+)\] \[(.*)\]$/s.exec(msg)) !== null) {
        let cmd = m[1] as string
        let arg = m[2] as string
        const chmod = cmd === 'site' ? /^chmod\s+([0-7]{3,4})\s+(.+)$/i.exec(arg) : null
        if (chmod !== null) { cmd = 'site chmod'; arg = `${chmod[1] as string} ${chmod[2] as string}` }
        if (REPLY_ACTIONS[cmd] === undefined) { memo.delete(key); return SKIP }
        // RNTO's reply needs the RNFR name too.
        const prev = memo.get(key)
        memo.set(key, { cmd, arg, ...(cmd === 'rnto' && prev?.cmd === 'rnfr' ? { from: prev.arg } : {}) })
        return SKIP
      }
      // A final reply line ("257 …"; "226-…" continues).
      if ((m = /^(\d{3}) (.*)$/s.exec(msg)) !== null) {
        const code = Number(m[1])
        const pending = memo.get(key)
        if (pending === undefined || code < 200) return SKIP
        // RNFR's 350 only prepares RNTO: keep it.
        if (pending.cmd === 'rnfr' && code === 350) return SKIP
        memo.delete(key)
        const action = REPLY_ACTIONS[pending.cmd] as FtpAction
        const ftp = { command: pending.cmd.toUpperCase(), response_code: code }
        if (code >= 400) {
          const path = pending.cmd === 'site chmod' ? pending.arg.replace(/^[0-7]+ /, '') : pending.cmd === 'rnto' ? (pending.from ?? pending.arg) : pending.arg
          return ev({ action, outcome: 'failure', path, ...(pending.cmd === 'rnto' ? { targetPath: pending.arg } : {}), reason: m[2], ftp })
        }
        // Successes of transfers, deletions and renames have their own NOTICE lines (with full paths).
        if (action === 'ftp_mkdir' || action === 'ftp_rmdir') return ev({ action, outcome: 'success', path: pending.arg, fileType: 'dir', ftp })
        if (action === 'ftp_chmod') {
          const c = /^([0-7]+) (.+)$/s.exec(pending.arg)
          return ev({ action, outcome: 'success', path: c === null ? pending.arg : c[2], ftp: { ...ftp, ...(c === null ? {} : { mode: c[1] }) } })
        }
        return SKIP
      }
      return SKIP
    }
    if (level === 'INFO') {
      if ((m = /^New connection from (.+)$/.exec(msg)) !== null) return ev({ action: 'ftp_connect', outcome: 'success', user: undefined })
      if (msg === 'Logout.' || msg.startsWith('Timeout')) { memo.delete(key); return ev({ action: 'ftp_disconnect', outcome: 'success', reason: msg === 'Logout.' ? undefined : msg }) }
      if ((m = /^(.+) is now logged in$/.exec(msg)) !== null) return ev({ action: 'ftp_login', outcome: 'success', user: m[1] })
      if ((m = /^Anonymous user logged in/.exec(msg)) !== null) return ev({ action: 'ftp_login', outcome: 'success', user: 'ftp', ftp: { access_mode: 'anonymous' } })
      return SKIP
    }
    if (level === 'WARNING' && (m = /^Authentication failed for user \[(.*)\]$/s.exec(msg)) !== null) {
      return ev({ action: 'ftp_login', outcome: 'failure', user: m[1], reason: 'authentication failed' })
    }
    if (level === 'NOTICE') {
      if ((m = /^(.+) (uploaded|downloaded) {2}\((\d+) bytes, [\d.]+KB\/sec\)$/s.exec(msg)) !== null) {
        const up = m[2] === 'uploaded'
        const bytes = Number(m[3])
        return ev({ action: up ? 'ftp_upload' : 'ftp_download', outcome: 'success', path: cleanPath(m[1] as string), size: bytes, ftp: { direction: up ? 'upload' : 'download', bytes } })
      }
      if ((m = /^Deleted (.+)$/s.exec(msg)) !== null) return ev({ action: 'ftp_delete', outcome: 'success', path: cleanPath(m[1] as string) })
      if ((m = /^File successfully renamed or moved: \[(.*)\]->\[(.*)\]$/s.exec(msg)) !== null) {
        memo.delete(key)
        return ev({ action: 'ftp_rename', outcome: 'success', path: m[1], targetPath: m[2] })
      }
    }
    return SKIP
  }

  return {
    dataset: 'pure-ftpd.syslog',
    eventClass: 'ftp',
    parse (line: string, ctx: LineContext): ParseResult {
      const h = parseSyslog(line.trimEnd(), ctx.readAt)
      if (h === undefined) return parseError('not a syslog line (RFC 3164, RFC 3339 or RFC 5424 header expected)')
      if (h.appname !== 'pure-ftpd') return SKIP
      const r = message(h.timestamp, h.procid, h.message)
      if (r.kind === 'event') {
        r.event.host = { hostname: h.hostname }
        r.event.log = { syslog: { hostname: h.hostname, appname: h.appname, ...(h.procid === undefined ? {} : { procid: h.procid }) } }
      }
      return r
    }
  }
}

export function createPureStatsParser (): LineParser {
  return { dataset: 'pure-ftpd.stats', eventClass: 'ftp', parse: line => parsePureStats(line) }
}
