/**
 * sshd (and sudo, pam_unix) lines → ECS authentication/session events. Pure.
 * Inputs: syslog lines (auth.log: RFC 3164, RFC 3339, RFC 5424 headers), `journalctl -o json` records
 * (one JSON object a line), and `sshd -E FILE` lines (message only: time is the read time).
 */
import { parseSyslog } from '../common/syslog.ts'
import { SKIP, parseError, type EventDraft, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'

export type SshdFormat = 'syslog' | 'journal' | 'sshd-e'

interface Header { timestamp: string, hostname?: string, appname: string, procid?: string, message: string }

const IP = '([0-9A-Fa-f:.]+(?:%[\\w.-]+)?)'
const USER = '(.+?)'

interface Rule {
  re: RegExp
  build: (m: RegExpExecArray) => Omit<EventDraft, '@timestamp'>
}

function auth (action: string, outcome: 'success' | 'failure', extra: Partial<EventDraft> = {}, types: string[] = ['start']): Omit<EventDraft, '@timestamp'> {
  return { ...extra, event: { kind: 'event', category: ['authentication', 'session'], type: outcome === 'success' ? types : ['start', 'denied'], action, outcome, module: 'sshd' } }
}

function src (ip: string, port: string): NonNullable<EventDraft['source']> {
  return { ip, port: Number(port) }
}

const SSHD_RULES: Rule[] = [
  {
    // Accepted publickey for alice from 192.0.2.1 port 5000 ssh2: ED25519 SHA256:xxxx
    re: new RegExp(`^Accepted (publickey|password|keyboard-interactive(?:/\\S+)?|hostbased|gssapi-with-mic) for ${USER} from ${IP} port (\\d+)(?: ssh2)?(?:: (\\S+) (\\S+))?`),
    build: m => auth('ssh_login', 'success', {
      user: { name: m[2] as string },
      source: src(m[3] as string, m[4] as string),
      ssh: { method: m[1] as string, ...(m[5] === undefined ? {} : { key_type: m[5] }), ...(m[6] === undefined ? {} : { fingerprint: m[6] }) }
    })
  },
  {
    re: new RegExp(`^Failed (publickey|password|keyboard-interactive(?:/\\S+)?|none|hostbased) for (invalid user )?${USER} from ${IP} port (\\d+)`),
    build: m => auth('ssh_login', 'failure', {
      user: { name: m[3] as string },
      source: src(m[4] as string, m[5] as string),
      ssh: { method: m[1] as string, ...(m[2] === undefined ? {} : { invalid_user: true }) }
    })
  },
  {
    re: new RegExp(`^Invalid user ${USER} from ${IP}(?: port (\\d+))?$`),
    build: m => auth('ssh_invalid_user', 'failure', { user: { name: m[1] as string }, source: { ip: m[2] as string, ...(m[3] === undefined ? {} : { port: Number(m[3]) }) }, ssh: { invalid_user: true } })
  },
  {
    re: new RegExp(`^error: maximum authentication attempts exceeded for (invalid user )?${USER} from ${IP} port (\\d+)`),
    build: m => auth('ssh_login_attempts_exceeded', 'failure', { user: { name: m[2] as string }, source: src(m[3] as string, m[4] as string) })
  },
  {
    // Connection closed by authenticating user alice 192.0.2.1 port 5000 [preauth]
    re: new RegExp(`^(Connection closed|Disconnected) (?:by|from) (?:(authenticating|invalid) user ${USER} |user ${USER} )?${IP} port (\\d+)( \\[preauth\\])?`),
    build: m => ({
      ...(m[3] ?? m[4]) === undefined ? {} : { user: { name: (m[3] ?? m[4]) as string } },
      source: src(m[5] as string, m[6] as string),
      event: {
        kind: 'event',
        category: ['session'],
        type: ['end'],
        action: m[7] === undefined ? 'ssh_disconnect' : 'ssh_disconnect_preauth',
        module: 'sshd'
      }
    })
  },
  {
    re: new RegExp(`^Received disconnect from ${IP} port (\\d+):(\\d+): (.*?)( \\[preauth\\])?$`),
    build: m => ({
      source: src(m[1] as string, m[2] as string),
      ssh: { disconnect_code: Number(m[3]), disconnect_reason: m[4] as string },
      event: { kind: 'event', category: ['session'], type: ['end'], action: m[5] === undefined ? 'ssh_disconnect' : 'ssh_disconnect_preauth', module: 'sshd' }
    })
  },
  {
    // pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)
    re: /^pam_unix\(sshd:session\): session (opened|closed) for user ([^\s(]+)(?:\(uid=(\d+)\))?/,
    build: m => ({
      user: { name: m[2] as string, ...(m[3] === undefined ? {} : { id: m[3] }) },
      event: { kind: 'event', category: ['session'], type: [m[1] === 'opened' ? 'start' : 'end'], action: m[1] === 'opened' ? 'ssh_session_open' : 'ssh_session_close', outcome: 'success', module: 'sshd' }
    })
  },
  {
    re: new RegExp(`^pam_unix\\(sshd:auth\\): authentication failure;.*?rhost=${IP}(?:\\s+user=(\\S+))?`),
    build: m => auth('ssh_pam_auth_failure', 'failure', { source: { ip: m[1] as string }, ...(m[2] === undefined ? {} : { user: { name: m[2] } }) })
  }
]

// sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id
const SUDO = /^\s*(\S+) : (?:(.*?) ; )?TTY=(\S+) ; PWD=(.*?) ; USER=(\S+) ;(?: (?:ENV|GROUP)=.*? ;)* COMMAND=(.*)$/

function sudo (message: string): Omit<EventDraft, '@timestamp'> | undefined {
  const m = SUDO.exec(message)
  if (m === null) return undefined
  const refused = m[2] !== undefined && m[2] !== ''
  return {
    user: { name: m[1] as string, effective: { name: m[5] as string } },
    process: { name: 'sudo', command_line: m[6] as string },
    ssh: { tty: m[3] as string, cwd: m[4] as string, ...(refused ? { sudo_error: m[2] as string } : {}) },
    event: { kind: 'event', category: ['process', 'iam'], type: refused ? ['start', 'denied'] : ['start'], action: 'sudo_command', outcome: refused ? 'failure' : 'success', module: 'sudo' }
  }
}

/** Matches one sshd/sudo message; SKIP for messages that carry no audit event. */
export function parseMessage (appname: string, message: string): Omit<EventDraft, '@timestamp'> | undefined | null {
  if (appname === 'sudo') return sudo(message) ?? null
  if (!appname.startsWith('sshd')) return null
  for (const r of SSHD_RULES) {
    const m = r.re.exec(message)
    if (m !== null) return r.build(m)
  }
  return null
}

function toResult (h: Header): ParseResult {
  const body = parseMessage(h.appname, h.message)
  if (body === null || body === undefined) return SKIP
  const draft: EventDraft = { '@timestamp': h.timestamp, ...body }
  draft.process = { name: h.appname, ...(h.procid === undefined ? {} : { pid: Number(h.procid) }), ...body.process }
  if (h.hostname !== undefined) draft.log = { syslog: { hostname: h.hostname, appname: h.appname, ...(h.procid === undefined ? {} : { procid: h.procid }) } }
  if (h.hostname !== undefined) draft.host = { hostname: h.hostname }
  return { kind: 'event', event: draft }
}

export function createSshdParser (format: SshdFormat = 'syslog'): LineParser {
  return {
    dataset: 'sshd.auth',
    eventClass: 'ssh',
    parse (line: string, ctx: LineContext): ParseResult {
      if (format === 'sshd-e') {
        return toResult({ timestamp: ctx.readAt.toISOString(), appname: 'sshd', message: line.replace(/^\s+/, '') })
      }
      if (format === 'journal') return parseJournal(line)
      const h = parseSyslog(line, ctx.readAt)
      if (h === undefined) return parseError('not a syslog line (RFC 3164, RFC 3339 or RFC 5424 header expected)')
      return toResult(h)
    }
  }
}

/** `journalctl -o json`: MESSAGE, SYSLOG_IDENTIFIER, _PID, _HOSTNAME, __REALTIME_TIMESTAMP (µs). */
function parseJournal (line: string): ParseResult {
  let rec: Record<string, unknown>
  try {
    rec = JSON.parse(line) as Record<string, unknown>
  } catch {
    return parseError('not a JSON object (journalctl -o json expected)')
  }
  const message = rec.MESSAGE
  const ident = rec.SYSLOG_IDENTIFIER ?? rec._COMM
  const us = Number(rec.__REALTIME_TIMESTAMP)
  if (typeof message !== 'string' || typeof ident !== 'string' || !Number.isFinite(us)) {
    return parseError('journal record without MESSAGE, SYSLOG_IDENTIFIER or __REALTIME_TIMESTAMP')
  }
  const pid = rec._PID ?? rec.SYSLOG_PID
  return toResult({
    timestamp: new Date(Math.floor(us / 1000)).toISOString(),
    ...(typeof rec._HOSTNAME === 'string' ? { hostname: rec._HOSTNAME } : {}),
    appname: ident,
    ...(typeof pid === 'string' ? { procid: pid } : {}),
    message
  })
}
