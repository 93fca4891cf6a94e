import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createSshdParser, type SshdFormat } from '../../../ingest/sshd/parse.ts'
import { processLine } from '../../../ingest/common/collector.ts'
import type { EventDraft, ParseResult } from '../../../ingest/common/parser.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'

// Real lines: Debian 12 sshd + rsyslog + sudo, captured by test/fixtures/sshd/capture.ts (see its README).
const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'sshd')
const USER = 'auditline-ssh'
const FILES: ReadonlyArray<{ file: string, format: SshdFormat }> = [
  { file: 'auth-rfc3339.log', format: 'syslog' },
  { file: 'auth-rfc3164.log', format: 'syslog' },
  { file: 'auth-rfc5424.log', format: 'syslog' },
  { file: 'journal-converted-from-rfc3339.jsonl', format: 'journal' },
  { file: 'sshd-e.log', format: 'sshd-e' }
]

/** Lines as the tailer yields them: split at LF, a CR before it dropped (`sshd -E` writes CRLF). */
function lines (file: string): string[] {
  return readFileSync(join(FIXTURES, file), 'utf8').split(/\r?\n/).filter(l => l !== '')
}

/** The first real line of `file` that matches `re`. */
function line (file: string, re: RegExp): string {
  const found = lines(file).find(l => re.test(l))
  assert.ok(found !== undefined, `no line matching ${String(re)} in ${file}`)
  return found
}

const readAt = new Date('2026-11-29T08:00:00.000Z')
const ctx = { path: '/var/log/auth.log', offset: 0, readAt }

function parse (format: SshdFormat, l: string): ParseResult {
  return createSshdParser(format).parse(l, ctx)
}

function event (format: SshdFormat, l: string): EventDraft {
  const r = parse(format, l)
  assert.equal(r.kind, 'event', `expected an event from: ${l} (got ${JSON.stringify(r)})`)
  return (r as { event: EventDraft }).event
}

/** Every line of a fixture through the collector's own line handling (parse → finalize → schema check). */
function collect (file: string, format: SshdFormat): { events: AuditEvent[], dead: number, skipped: number } {
  const parser = createSshdParser(format)
  const out = { events: [] as AuditEvent[], dead: 0, skipped: 0 }
  let offset = 0
  for (const text of lines(file)) {
    const bytes = Buffer.from(text)
    const r = processLine({ bytes, truncated: false, length: bytes.length, path: file, fileKey: '1:2', generation: 0, offset }, parser, { host: 'collector', source: 'auth' }, out.events.length + out.dead, readAt)
    offset += bytes.length + 1
    if ('event' in r) out.events.push(r.event)
    else if ('dead' in r) out.dead++
    else out.skipped++
  }
  return out
}

function count (events: AuditEvent[], action: string, outcome?: string): number {
  return events.filter(e => e.event.action === action && (outcome === undefined || e.event.outcome === outcome)).length
}

describe('sshd parser on real Debian 12 lines', () => {
  for (const { file, format } of FILES) {
    it(`turns every line of ${file} into a valid event or a skip, never a dead letter`, () => {
      const { events, dead, skipped } = collect(file, format)
      assert.equal(dead, 0)
      assert.ok(skipped > 0, 'daemon notices and PAM chatter are skipped')
      const syslogRoute = format !== 'sshd-e'
      // Scenario: 2 address families × (password, publickey, keyboard-interactive) on this instance + two key logins running sudo.
      assert.equal(count(events, 'ssh_login', 'success'), syslogRoute ? 8 : 6)
      // One failed password + one for an invalid user + three refused keys.
      assert.equal(count(events, 'ssh_login', 'failure'), 5)
      assert.equal(count(events, 'ssh_invalid_user'), 1)
      assert.equal(count(events, 'ssh_login_attempts_exceeded'), 1)
      assert.ok(count(events, 'ssh_disconnect') >= 12)
      assert.ok(count(events, 'ssh_disconnect_preauth') >= 4)
      // pam_unix lines and sudo reach syslog only, never the `-E` file.
      assert.equal(count(events, 'ssh_session_open') > 0, syslogRoute)
      assert.equal(count(events, 'sudo_command'), syslogRoute ? 4 : 0)
      for (const e of events) {
        if (e.source?.ip !== undefined) assert.ok(['127.0.0.1', '::1'].includes(e.source.ip), `unexpected ip ${e.source.ip}`)
        assert.deepEqual(e.related?.hosts, ['collector'])
      }
    })
  }

  it('reads a password login over IPv4 from the RFC 3339 file (Debian 12 default)', () => {
    const e = event('syslog', line('auth-rfc3339.log', /Accepted password for .* from 127\.0\.0\.1/))
    assert.match(e['@timestamp'] ?? '', /^2026-11-29T07:\d\d:\d\d\.\d{3}Z$/)
    assert.equal(e.event.action, 'ssh_login')
    assert.equal(e.event.outcome, 'success')
    assert.deepEqual(e.event.category, ['authentication', 'session'])
    assert.deepEqual(e.event.type, ['start'])
    assert.equal(e.user?.name, USER)
    assert.equal(e.source?.ip, '127.0.0.1')
    assert.equal(typeof e.source?.port, 'number')
    assert.equal(e.ssh?.method, 'password')
    assert.equal(e.host?.hostname, 'vm')
    assert.equal(e.process?.name, 'sshd')
    assert.equal(typeof e.process?.pid, 'number')
  })

  it('keeps the key type and fingerprint of a publickey login over IPv6', () => {
    const e = event('syslog', line('auth-rfc5424.log', /Accepted publickey for .* from ::1/))
    assert.equal(e.source?.ip, '::1')
    assert.equal(e.ssh?.method, 'publickey')
    assert.equal(e.ssh?.key_type, 'ED25519')
    assert.match(String(e.ssh?.fingerprint), /^SHA256:[A-Za-z0-9+/]{43}$/)
  })

  it('reads keyboard-interactive/pam logins', () => {
    const e = event('sshd-e', line('sshd-e.log', /^Accepted keyboard-interactive\/pam for .* from ::1/))
    assert.equal(e.ssh?.method, 'keyboard-interactive/pam')
    assert.equal(e.event.outcome, 'success')
  })

  it('records a wrong password as a failed login with outcome failure and type denied', () => {
    const e = event('syslog', line('auth-rfc3164.log', new RegExp(`Failed password for ${USER} from`)))
    assert.equal(e.event.action, 'ssh_login')
    assert.equal(e.event.outcome, 'failure')
    assert.deepEqual(e.event.type, ['start', 'denied'])
    assert.equal(e.user?.name, USER)
    assert.equal(e.source?.ip, '127.0.0.1')
    assert.equal(e.ssh?.invalid_user, undefined)
  })

  it('marks attempts on accounts that do not exist as invalid users', () => {
    const invalid = event('syslog', line('auth-rfc3339.log', /Invalid user intruder-x from ::1/))
    assert.equal(invalid.event.action, 'ssh_invalid_user')
    assert.equal(invalid.event.outcome, 'failure')
    assert.equal(invalid.user?.name, 'intruder-x')
    assert.equal(invalid.ssh?.invalid_user, true)
    const failed = event('sshd-e', line('sshd-e.log', /^Failed password for invalid user intruder-x from 127\.0\.0\.1/))
    assert.equal(failed.event.action, 'ssh_login')
    assert.equal(failed.user?.name, 'intruder-x')
    assert.equal(failed.source?.ip, '127.0.0.1')
    assert.equal(failed.ssh?.invalid_user, true)
    const closed = event('syslog', line('auth-rfc3339.log', /Connection closed by invalid user intruder-x/))
    assert.equal(closed.event.action, 'ssh_disconnect_preauth')
    assert.equal(closed.ssh?.invalid_user, true)
  })

  it('keeps the fingerprint of each refused key and the attempts-exceeded event, with or without the "error:" prefix', () => {
    const refused = event('sshd-e', line('sshd-e.log', /^Failed publickey/))
    assert.equal(refused.event.outcome, 'failure')
    assert.equal(refused.ssh?.key_type, 'ED25519')
    assert.match(String(refused.ssh?.fingerprint), /^SHA256:/)
    for (const [format, l] of [['syslog', line('auth-rfc3339.log', /error: maximum authentication attempts exceeded/)], ['sshd-e', line('sshd-e.log', /^maximum authentication attempts exceeded/)]] as const) {
      const e = event(format, l)
      assert.equal(e.event.action, 'ssh_login_attempts_exceeded')
      assert.equal(e.user?.name, USER)
    }
    const bye = event('syslog', line('auth-rfc3339.log', /Disconnecting authenticating user/))
    assert.equal(bye.event.action, 'ssh_disconnect_preauth')
    assert.equal(bye.ssh?.disconnect_reason, 'Too many authentication failures')
  })

  it('tells session ends after login from connections that never logged in', () => {
    const after = event('syslog', line('auth-rfc3339.log', /Disconnected from user .* ::1/))
    assert.equal(after.event.action, 'ssh_disconnect')
    assert.equal(after.user?.name, USER)
    assert.equal(after.source?.ip, '::1')
    const received = event('syslog', line('auth-rfc3339.log', /Received disconnect from 127\.0\.0\.1 .*disconnected by user/))
    assert.equal(received.event.action, 'ssh_disconnect')
    assert.equal(received.ssh?.disconnect_code, 11)
    // A TCP connect without SSH, and ssh-keyscan: no user, before authentication.
    for (const re of [/Connection closed by 127\.0\.0\.1 port \d+$/, /Connection closed by ::1 port \d+ \[preauth\]/]) {
      const e = event('syslog', line('auth-rfc3339.log', re))
      assert.equal(e.event.action, 'ssh_disconnect_preauth')
      assert.equal(e.user, undefined)
    }
  })

  it('reads pam_unix session lines, also those sshd -E leaves without a pid', () => {
    const open = event('syslog', line('auth-rfc3339.log', /sshd\[\d+\]: pam_unix\(sshd:session\): session opened/))
    assert.equal(open.event.action, 'ssh_session_open')
    assert.equal(open.user?.name, USER)
    assert.match(open.user?.id ?? '', /^\d+$/)
    const close = event('syslog', line('auth-rfc3164.log', / sshd: pam_unix\(sshd:session\): session closed/))
    assert.equal(close.event.action, 'ssh_session_close')
    assert.equal(close.process?.pid, undefined)
  })

  it('reads sudo lines without a TTY: a refusal and a command run', () => {
    const refused = event('syslog', line('auth-rfc5424.log', /user NOT in sudoers ; PWD=/))
    assert.equal(refused.event.action, 'sudo_command')
    assert.equal(refused.event.outcome, 'failure')
    assert.equal(refused.user?.name, USER)
    assert.equal(refused.user?.effective?.name, 'root')
    assert.equal(refused.process?.command_line, '/usr/bin/id')
    assert.equal(refused.ssh?.sudo_error, 'user NOT in sudoers')
    assert.equal(refused.ssh?.tty, undefined)
    const ran = event('syslog', line('auth-rfc3164.log', /sudo: +root : PWD=/))
    assert.equal(ran.ssh?.tty, undefined)
    assert.equal(ran.event.outcome, 'success')
    assert.equal(ran.user?.name, 'root')
    assert.equal(ran.user?.effective?.name, USER)
    assert.equal(ran.process?.command_line, '/usr/bin/true')
  })

  it('reads sudo lines with a TTY: the refusal stays a refusal, the command run a success', () => {
    const refused = event('syslog', line('auth-rfc3339.log', /user NOT in sudoers ; TTY=/))
    assert.equal(refused.event.outcome, 'failure')
    assert.match(String(refused.ssh?.tty), /^pts\/\d+$/)
    assert.equal(refused.process?.command_line, '/usr/bin/whoami')
    const ran = event('syslog', line('auth-rfc3339.log', /sudo: +root : TTY=/))
    assert.equal(ran.event.outcome, 'success')
    assert.match(String(ran.ssh?.tty), /^pts\/\d+$/)
    assert.equal(ran.ssh?.sudo_error, undefined)
    assert.equal(ran.process?.command_line, '/usr/bin/id -u')
  })

  it('gives the same event from all three syslog formats and the journal record', () => {
    const pick = (l: string, format: SshdFormat): unknown => {
      const e = event(format, l)
      return [e.event.action, e.event.outcome, e.user?.name, e.source?.ip, e.source?.port, e.ssh, e.host?.hostname, e.process?.pid]
    }
    const re = /Accepted publickey for .* from ::1/
    const want = pick(line('auth-rfc3339.log', re), 'syslog')
    assert.deepEqual(pick(line('auth-rfc3164.log', re), 'syslog'), want)
    assert.deepEqual(pick(line('auth-rfc5424.log', re), 'syslog'), want)
    assert.deepEqual(pick(line('journal-converted-from-rfc3339.jsonl', re), 'journal'), want)
    assert.equal(event('journal', line('journal-converted-from-rfc3339.jsonl', re))['@timestamp'], event('syslog', line('auth-rfc3339.log', re))['@timestamp'])
  })

  it('reads sshd -E lines with the CRLF ending OpenSSH writes', () => {
    const raw = readFileSync(join(FIXTURES, 'sshd-e.log'), 'utf8').split('\n').find(l => l.startsWith('Invalid user'))
    assert.ok(raw !== undefined && raw.endsWith('\r'))
    assert.equal(event('sshd-e', raw).event.action, 'ssh_invalid_user')
  })

  it('takes the time of an sshd -E line from when it was read', () => {
    const e = event('sshd-e', line('sshd-e.log', /^Accepted password/))
    assert.equal(e['@timestamp'], readAt.toISOString())
    assert.equal(e.host, undefined)
  })

  it('skips lines that carry no audit event', () => {
    for (const re of [/Server listening on/, /Connection from .* rdomain/, /pam_limits\(sshd:session\)/, /Postponed publickey/, /Accepted key ED25519 .* found at/,
      /User child is on pid/, /error: kex_exchange_identification/, /pam_unix\(sudo:session\)/, /pam_unix\(sshd:auth\): check pass/, /Starting session: command/]) {
      assert.deepEqual(parse('syslog', line('auth-rfc3339.log', re)), { kind: 'skip' }, String(re))
    }
    assert.deepEqual(parse('sshd-e', line('sshd-e.log', /^kex_exchange_identification/)), { kind: 'skip' })
    // Other programs in auth.log (here a real sshd line under another program's tag) are not sshd's business.
    assert.deepEqual(parse('syslog', line('auth-rfc3339.log', /Accepted password/).replace(/ sshd\[/, ' CRON[')), { kind: 'skip' })
  })

  it('turns a line without a syslog header, or a broken journal record, into an error', () => {
    const garbage = parse('syslog', 'this is not a syslog line at all')
    assert.equal(garbage.kind, 'error')
    assert.match((garbage as { reason: string }).reason, /syslog/)
    assert.equal(parse('journal', '{"MESSAGE": "x"').kind, 'error')
    assert.equal(parse('journal', '["not", "an", "object"]').kind, 'error')
    assert.equal(parse('journal', '{"MESSAGE": "Accepted password for a from ::1 port 1 ssh2"}').kind, 'error')
  })

  it('turns a login decision it cannot read into an error instead of skipping it', () => {
    // A format drift (here: a truncated line) must surface as a dead letter, not vanish.
    const drift = parse('sshd-e', line('sshd-e.log', /^Accepted password/).replace(/ from .*/, ' from'))
    assert.equal(drift.kind, 'error')
    // A real sudo line with PWD and USER cut out.
    assert.equal(parse('syslog', line('auth-rfc3339.log', /user NOT in sudoers ; PWD=/).replace(/ PWD=.* ; USER=\S+ ;/, '')).kind, 'error')
  })
})
