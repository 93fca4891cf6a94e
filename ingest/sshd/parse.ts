/**
 * sshd (and sudo, pam_unix) lines → ECS authentication/session events. Pure.
 * Inputs: syslog lines (auth.log: RFC 3164, RFC 3339, RFC 5424 headers), `journalctl -o json` records
 * (one JSON object a line), and `sshd -E FILE` lines (message only: time is the read time).
 *
 * The rules follow what OpenSSH 9.2 (Debian 12), sudo 1.9 and rsyslog 8.2302 really write: see the
 * captured lines in test/fixtures/sshd/ (and test/fixtures/sshd/README.md for how they were made).
 */
import { parseSyslog } from '../common/syslog.ts'
import { SKIP, parseError, type EventDraft, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'

export type SshdFormat = 'syslog' | 'journal' | 'sshd-e'

interface Header { timestamp: string, hostname?: string, appname: string, procid?: string, message: string }

type Body = Omit<EventDraft, '@timestamp'>

const IP = '([0-9A-Fa-f:.]+(?:%[\\w.-]+)?)'
const USER = '(.+?)'
const METHOD = '(publickey|password|keyboard-interactive(?:/\\S+)?|hostbased|gssapi-with-mic|none)'
/** `ssh2: ED25519 SHA256:…` after publickey attempts (a certificate adds ` ID … (serial …) CA …`, ignored). */
const KEY = '(?: ssh2)?(?:: (\\S+) (SHA256:\\S+|MD5:\\S+))?'

interface Rule {
  re: RegExp
  build: (m: RegExpExecArray) => Body
}

function auth (action: string, outcome: 'success' | 'failure', extra: Partial<Body> = {}): Body {
  return { ...extra, event: { kind: 'event', category: ['authentication', 'session'], type: outcome === 'success' ? ['start'] : ['start', 'denied'], action, outcome, module: 'sshd' } }
}

function src (ip: string, port: string | undefined): NonNullable<EventDraft['source']> {
  return { ip, ...(port === undefined ? {} : { port: Number(port) }) }
}

function key (type: string | undefined, fingerprint: string | undefined): Record<string, string> {
  return type === undefined || fingerprint === undefined ? {} : { key_type: type, fingerprint }
}

/** A connection that ends before authentication succeeded: `[preauth]`, or no user known yet. */
function end (action: 'ssh_disconnect' | 'ssh_disconnect_preauth', user: string | undefined, invalid: boolean, ip: string, port: string, ssh: Record<string, string | number | boolean> = {}): Body {
  const custom = { ...ssh, ...(invalid ? { invalid_user: true } : {}) }
  return {
    ...(user === undefined ? {} : { user: { name: user } }),
    source: src(ip, port),
    ...(Object.keys(custom).length === 0 ? {} : { ssh: custom }),
    event: { kind: 'event', category: ['session'], type: ['end'], action, module: 'sshd' }
  }
}

const SSHD_RULES: Rule[] = [
  {
    // Accepted publickey for alice from 192.0.2.1 port 5000 ssh2: ED25519 SHA256:xxxx
    re: new RegExp(`^Accepted ${METHOD} for ${USER} from ${IP} port (\\d+)${KEY}`),
    build: m => auth('ssh_login', 'success', {
      user: { name: m[2] as string },
      source: src(m[3] as string, m[4]),
      ssh: { method: m[1] as string, ...key(m[5], m[6]) }
    })
  },
  {
    // Failed password for invalid user bob from ::1 port 5000 ssh2 | Failed publickey for alice from … ssh2: ED25519 SHA256:…
    re: new RegExp(`^Failed ${METHOD} for (invalid user )?${USER} from ${IP} port (\\d+)${KEY}`),
    build: m => auth('ssh_login', 'failure', {
      user: { name: m[3] as string },
      source: src(m[4] as string, m[5]),
      ssh: { method: m[1] as string, ...(m[2] === undefined ? {} : { invalid_user: true }), ...key(m[6], m[7]) }
    })
  },
  {
    re: new RegExp(`^Invalid user ${USER} from ${IP}(?: port (\\d+))?$`),
    build: m => auth('ssh_invalid_user', 'failure', { user: { name: m[1] as string }, source: src(m[2] as string, m[3]), ssh: { invalid_user: true } })
  },
  {
    // syslog: "error: maximum …"; `sshd -E` writes the same message without the level prefix.
    re: new RegExp(`^(?:error: )?maximum authentication attempts exceeded for (invalid user )?${USER} from ${IP} port (\\d+)`),
    build: m => auth('ssh_login_attempts_exceeded', 'failure', {
      user: { name: m[2] as string },
      source: src(m[3] as string, m[4]),
      ...(m[1] === undefined ? {} : { ssh: { invalid_user: true } })
    })
  },
  {
    // Connection closed by authenticating user alice 192.0.2.1 port 5000 [preauth]
    // Disconnected from user alice 192.0.2.1 port 5000 | Connection closed by 192.0.2.1 port 5000 [preauth]
    re: new RegExp(`^(?:Connection closed by|Disconnected from) (?:(authenticating|invalid) user ${USER} |user ${USER} )?${IP} port (\\d+)( \\[preauth\\])?$`),
    build: m => {
      const user = m[2] ?? m[3]
      // "user X" appears only once authenticated; without it the connection never logged in.
      const preauth = m[6] !== undefined || m[3] === undefined
      return end(preauth ? 'ssh_disconnect_preauth' : 'ssh_disconnect', user, m[1] === 'invalid', m[4] as string, m[5] as string)
    }
  },
  {
    // Disconnecting authenticating user alice 192.0.2.1 port 5000: Too many authentication failures [preauth]
    re: new RegExp(`^Disconnecting (?:(authenticating|invalid) user ${USER} |user ${USER} )?${IP} port (\\d+): (.*?)( \\[preauth\\])?$`),
    build: m => end(m[7] !== undefined || m[3] === undefined ? 'ssh_disconnect_preauth' : 'ssh_disconnect', m[2] ?? m[3], m[1] === 'invalid', m[4] as string, m[5] as string, { disconnect_reason: m[6] as string })
  },
  {
    re: new RegExp(`^Received disconnect from ${IP} port (\\d+):(\\d+): (.*?)( \\[preauth\\])?$`),
    build: m => ({
      source: src(m[1] as string, m[2]),
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
    // pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=::1  user=alice
    re: new RegExp(`^pam_unix\\(sshd:auth\\): authentication failure;.*?rhost=${IP}(?:\\s+user=(\\S+))?`),
    build: m => auth('ssh_pam_auth_failure', 'failure', { source: { ip: m[1] as string }, ...(m[2] === undefined ? {} : { user: { name: m[2] } }) })
  }
]

/**
 * Messages that announce a login decision: when none of the rules above matches one of these, the
 * format has changed under us, and the line must become a dead letter rather than vanish as a skip.
 */
const SSHD_MUST_MATCH = /^(?:(?:Accepted|Failed) \S+ for |Invalid user |(?:error: )?maximum authentication attempts exceeded )/

// sudo 1.9:  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id
//            alice : user NOT in sudoers ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id   (no tty: no TTY=)
const SUDO = /^(\S+) : (?:((?!TTY=|PWD=)[^;]+?) ; )?(?:TTY=(\S+) ; )?PWD=(.*?) ; USER=(\S+) ;(?: [A-Z]+=[^;]*? ;)* COMMAND=(.*)$/

function sudo (message: string): Body | undefined {
  const m = SUDO.exec(message)
  if (m === null) return undefined
  const refused = m[2] !== undefined
  return {
    user: { name: m[1] as string, effective: { name: m[5] as string } },
    process: { name: 'sudo', command_line: m[6] as string },
    ssh: { ...(m[3] === undefined ? {} : { tty: m[3] }), cwd: m[4] as string, ...(refused ? { sudo_error: m[2] as string } : {}) },
    event: { kind: 'event', category: ['process', 'iam'], type: refused ? ['start', 'denied'] : ['start'], action: 'sudo_command', outcome: refused ? 'failure' : 'success', module: 'sudo' }
  }
}

/**
 * Matches one sshd/sudo message: the event body, `null` for a message that carries no audit event
 * (daemon notices, PAM chatter, VERBOSE detail), or a string: why a line that should match did not.
 */
export function parseMessage (appname: string, message: string): Body | null | string {
  // RFC 5424 (rsyslog's %msg%) keeps the space after the tag; sudo pads the user name with spaces.
  const msg = message.trimStart()
  if (appname === 'sudo') {
    const body = sudo(msg)
    if (body !== undefined) return body
    return msg.includes(' ; COMMAND=') ? 'sudo command line not in the expected "user : … ; PWD=… ; USER=… ; COMMAND=…" form' : null
  }
  // OpenSSH ≥ 9.8 logs per-connection lines as `sshd-session`.
  if (!appname.startsWith('sshd')) return null
  for (const r of SSHD_RULES) {
    const m = r.re.exec(msg)
    if (m !== null) return r.build(m)
  }
  return SSHD_MUST_MATCH.test(msg) ? `unrecognised sshd authentication message: ${msg.slice(0, 40)}…` : null
}

function toResult (h: Header): ParseResult {
  const body = parseMessage(h.appname, h.message)
  if (body === null) return SKIP
  if (typeof body === 'string') return parseError(body)
  const draft: EventDraft = { '@timestamp': h.timestamp, ...body }
  draft.process = { name: h.appname, ...(h.procid === undefined ? {} : { pid: Number(h.procid) }), ...body.process }
  if (h.hostname !== undefined) {
    draft.log = { syslog: { hostname: h.hostname, appname: h.appname, ...(h.procid === undefined ? {} : { procid: h.procid }) } }
    draft.host = { hostname: h.hostname }
  }
  return { kind: 'event', event: draft }
}

export function createSshdParser (format: SshdFormat = 'syslog'): LineParser {
  return {
    dataset: 'sshd.auth',
    eventClass: 'ssh',
    parse (line: string, ctx: LineContext): ParseResult {
      if (format === 'sshd-e') {
        // `sshd -E` ends its lines with CRLF (OpenSSH writes "\r\n" to a log file); the tailer drops the CR, callers may not.
        return toResult({ timestamp: ctx.readAt.toISOString(), appname: 'sshd', message: line.endsWith('\r') ? line.slice(0, -1) : line })
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
  let rec: unknown
  try {
    rec = JSON.parse(line)
  } catch {
    return parseError('not a JSON object (journalctl -o json expected)')
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return parseError('not a JSON object (journalctl -o json expected)')
  const r = rec as Record<string, unknown>
  // journald stores a MESSAGE that is not valid UTF-8 as an array of bytes.
  const message = Array.isArray(r.MESSAGE) ? Buffer.from(r.MESSAGE as number[]).toString('utf8') : r.MESSAGE
  const ident = r.SYSLOG_IDENTIFIER ?? r._COMM
  const us = Number(r.__REALTIME_TIMESTAMP)
  if (typeof message !== 'string' || typeof ident !== 'string' || !Number.isFinite(us)) {
    return parseError('journal record without MESSAGE, SYSLOG_IDENTIFIER or __REALTIME_TIMESTAMP')
  }
  const pid = r._PID ?? r.SYSLOG_PID
  return toResult({
    timestamp: new Date(Math.floor(us / 1000)).toISOString(),
    ...(typeof r._HOSTNAME === 'string' ? { hostname: r._HOSTNAME } : {}),
    appname: ident,
    ...(typeof pid === 'string' ? { procid: pid } : {}),
    message
  })
}
