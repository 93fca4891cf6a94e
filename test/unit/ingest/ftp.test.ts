import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createFtpParser, type FtpServer } from '../../../ingest/ftp/index.ts'
import { parserFor } from '../../../ingest/sources.ts'
import { processLine } from '../../../ingest/common/collector.ts'
import type { EventDraft, LineParser, ParseResult } from '../../../ingest/common/parser.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { isAuditError } from '../../../lib/errors.ts'

// Real lines written by Debian 12's vsftpd 3.0.3, proftpd 1.3.8 and pure-ftpd 1.0.50 (+ rsyslog 8.2302)
// while test/helpers/ftp-scenario.ts ran against them; regenerate with test/fixtures/ftp/capture.ts.
const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'ftp')
const USER = 'auditline-ftp'
const HOME = `/home/${USER}`

function lines (file: string): string[] {
  return readFileSync(join(FIXTURES, file), 'utf8').split('\n').filter(l => l !== '')
}

function line (file: string, re: RegExp): string {
  const found = lines(file).find(l => re.test(l))
  assert.ok(found !== undefined, `no line matching ${String(re)} in ${file}`)
  return found
}

const readAt = new Date('2026-11-29T08:00:00.000Z')
const ctx = { path: '/var/log/ftp.log', offset: 0, readAt }

function parse (server: FtpServer, format: string, l: string, parser = createFtpParser(server, format)): ParseResult {
  return parser.parse(l, ctx)
}

function event (server: FtpServer, format: string, l: string, parser?: LineParser): EventDraft {
  const r = parse(server, format, l, parser)
  assert.equal(r.kind, 'event', `expected an event from: ${l} (got ${JSON.stringify(r)})`)
  return (r as { event: EventDraft }).event
}

/** Every line of a fixture through the collector's own line handling (parse → finalize → schema check). */
function collect (file: string, server: FtpServer, format: string): { events: AuditEvent[], dead: string[], skipped: number } {
  const parser = createFtpParser(server, format)
  const out = { events: [] as AuditEvent[], dead: [] as string[], skipped: 0 }
  let offset = 0
  for (const text of lines(file)) {
    const bytes = Buffer.from(text)
    const r = processLine({ bytes, truncated: false, length: bytes.length, path: file, fileKey: '1:2', generation: 0, offset }, parser, { host: 'collector', source: 'ftp' }, out.events.length + out.dead.length, readAt)
    offset += bytes.length + 1
    if ('event' in r) out.events.push(r.event)
    else if ('dead' in r) out.dead.push(`${r.dead.reason}: ${text}`)
    else out.skipped++
  }
  return out
}

type Want = Partial<{ action: string, outcome: string, user: string, ip: string, path: string, target: string }>

function find (events: AuditEvent[], w: Want): AuditEvent {
  const e = events.find(e =>
    (w.action === undefined || e.event.action === w.action) &&
    (w.outcome === undefined || e.event.outcome === w.outcome) &&
    (w.user === undefined || e.user?.name === w.user) &&
    (w.ip === undefined || e.source?.ip === w.ip) &&
    (w.path === undefined || e.file?.path === w.path) &&
    (w.target === undefined || e.file?.target_path === w.target))
  assert.ok(e !== undefined, `no event ${JSON.stringify(w)} among ${events.map(e => `${e.event.action}/${String(e.event.outcome)}/${String(e.source?.ip)}/${String(e.file?.path)}`).join(', ')}`)
  return e
}

/** The TOM's list for a log that records every kind: both address families, successes and failures. */
function assertFullCoverage (events: AuditEvent[], paths: (name: string) => string, transfers = true): void {
  for (const ip of ['127.0.0.1', '::1']) {
    const v6 = ip === '::1'
    find(events, { action: 'ftp_login', outcome: 'success', user: USER, ip })
    find(events, { action: 'ftp_login', outcome: 'failure', user: USER, ip })
    if (transfers) {
      find(events, { action: 'ftp_upload', outcome: 'success', user: USER, ip, path: paths(v6 ? 'up6-cap.bin' : 'up-cap.txt') })
      find(events, { action: 'ftp_download', outcome: 'success', user: USER, ip, path: paths(v6 ? 'up6-cap.bin' : 'up-cap.txt') })
      find(events, { action: 'ftp_delete', outcome: 'success', user: USER, ip, path: paths(v6 ? 'renamed6-cap.bin' : 'renamed-cap.txt') })
    }
    find(events, { action: 'ftp_rename', outcome: 'success', user: USER, ip, path: paths(v6 ? 'up6-cap.bin' : 'up-cap.txt'), target: paths(v6 ? 'renamed6-cap.bin' : 'renamed-cap.txt') })
    find(events, { action: 'ftp_mkdir', outcome: 'success', user: USER, ip, path: paths(v6 ? 'dir6-cap' : 'dir-cap') })
    find(events, { action: 'ftp_rmdir', outcome: 'success', user: USER, ip, path: paths(v6 ? 'dir6-cap' : 'dir-cap') })
  }
  find(events, { action: 'ftp_chmod', outcome: 'success', user: USER, ip: '127.0.0.1', path: paths('renamed-cap.txt') })
  find(events, { action: 'ftp_delete', outcome: 'failure', user: USER, ip: '127.0.0.1', path: paths('missing-cap.txt') })
  for (const e of events) {
    assert.equal(e.auditline.class, 'ftp')
    if (e.event.category.includes('file')) assert.ok(e.file?.path !== undefined, `file event without path: ${JSON.stringify(e)}`)
  }
}

const abs = (n: string): string => `${HOME}/${n}`
/** Bytes of the IPv4 upload: the scenario stores `hello cap\n`. */
const V4_SIZE = Buffer.byteLength('hello cap\n')

describe('ftp collectors', () => {
  describe('registry', () => {
    it('registers vsftpd, proftpd and pure-ftpd as sources producing to the ftp topic', () => {
      for (const type of ['vsftpd', 'proftpd', 'pure-ftpd']) {
        const { parser, topic } = parserFor(type)
        assert.equal(topic, 'ftp')
        assert.equal(parser.eventClass, 'ftp')
        assert.match(parser.dataset, new RegExp(`^${type}\\.`))
      }
      assert.equal(parserFor('proftpd', 'extended').parser.dataset, 'proftpd.extended')
      assert.equal(parserFor('pure-ftpd', 'stats').parser.dataset, 'pure-ftpd.stats')
    })

    it('refuses options, naming the option, and unknown formats', () => {
      assert.throws(() => parserFor('vsftpd', undefined, { timezone: 'UTC' }),
        (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && err.message.includes('options.timezone'))
      assert.throws(() => parserFor('proftpd', 'native'), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
      assert.throws(() => createFtpParser('pure-ftpd', 'clf'), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    })
  })

  describe('vsftpd native log (vsftpd.log, log_ftp_protocol=YES)', () => {
    const F = 'vsftpd-native.log'

    it('turns every real line into an event or a skip, covering every action from IPv4 and IPv6', () => {
      const r = collect(F, 'vsftpd', 'native')
      assert.deepEqual(r.dead, [])
      assertFullCoverage(r.events, abs)
      find(r.events, { action: 'ftp_connect', ip: '::1' })
      // The protocol log (FTP command/response) makes no events of its own.
      assert.equal(r.events.length, lines(F).filter(l => / (OK|FAIL) [A-Z]+: |CONNECT: /.test(l)).length)
    })

    it('reads an upload with path, size, bytes and the writing process', () => {
      const l = line(F, /OK UPLOAD: Client "::1"/)
      const e = event('vsftpd', 'native', l)
      assert.deepEqual(e.event.category, ['file'])
      assert.deepEqual(e.event.type, ['creation'])
      assert.equal(e.file?.path, abs('up6-cap.bin'))
      assert.equal(e.file?.size, 4096)
      assert.equal(e.ftp?.bytes, 4096)
      assert.equal(e.ftp?.direction, 'upload')
      assert.equal(e.ftp?.server, 'vsftpd')
      assert.equal(e.process?.pid, Number(/\[pid (\d+)\]/.exec(l)?.[1]))
    })

    it('marks a refused password as a denied authentication start', () => {
      const e = event('vsftpd', 'native', line(F, /FAIL LOGIN: Client "127\.0\.0\.1"/))
      assert.deepEqual(e.event.category, ['authentication'])
      assert.deepEqual(e.event.type, ['start', 'denied'])
      assert.equal(e.event.outcome, 'failure')
    })

    it('splits a rename whose paths contain " /" with the RNTO argument of the same process', () => {
      const rnto = line(F, /"RNTO renamed-cap\.txt"/).replace('RNTO renamed-cap.txt', 'RNTO x /y.txt')
      const ok = line(F, /OK RENAME: Client "127\.0\.0\.1"/).replace(' /home/auditline-ftp/renamed-cap.txt"', ' /home/auditline-ftp/x /y.txt"')
      const parser = createFtpParser('vsftpd', 'native')
      assert.equal(parse('vsftpd', 'native', rnto, parser).kind, 'skip')
      const e = event('vsftpd', 'native', ok, parser)
      assert.equal(e.file?.path, abs('up-cap.txt'))
      assert.equal(e.file?.target_path, abs('x /y.txt'))
      assert.equal(e.ftp?.rename_ambiguous, undefined)
      // Without the protocol line the split is a guess, and the event says so.
      const guess = event('vsftpd', 'native', ok)
      assert.equal(guess.ftp?.rename_ambiguous, true)
    })

    it('reads the chmod mode apart from the path', () => {
      const e = event('vsftpd', 'native', line(F, /OK CHMOD:/))
      assert.equal(e.file?.path, abs('renamed-cap.txt'))
      assert.equal(e.ftp?.mode, '600')
      assert.deepEqual(e.event.type, ['change'])
    })

    it('reads the ctime stamp in the collector\'s local time zone', () => {
      const saved = process.env.TZ
      try {
        process.env.TZ = 'Europe/Berlin'
        const e = event('vsftpd', 'native', 'Sun Nov 29 07:04:47 2026 [pid 14218] CONNECT: Client "127.0.0.1"')
        assert.equal(e['@timestamp'], '2026-11-29T06:04:47.000Z')
      } finally {
        if (saved === undefined) delete process.env.TZ
        else process.env.TZ = saved
      }
    })

    it('rejects a malformed line and an unknown operation, and skips debug output', () => {
      const l = line(F, /OK UPLOAD: Client "127/)
      assert.equal(parse('vsftpd', 'native', l.slice(30)).kind, 'error')
      assert.equal(parse('vsftpd', 'native', l.replace(/, \d+ bytes.*$/, '')).kind, 'error')
      assert.equal(parse('vsftpd', 'native', l.replace('OK UPLOAD', 'OK FROBNICATE')).kind, 'error')
      assert.equal(parse('vsftpd', 'native', 'Sun Nov 29 07:04:47 2026 [pid 1] DEBUG: Client "127.0.0.1", "SSL version: TLSv1.3"').kind, 'skip')
    })
  })

  describe('xferlog (vsftpd xferlog_std_format, proftpd TransferLog)', () => {
    it('reads vsftpd transfers from IPv4 and IPv6 clients', () => {
      const r = collect('vsftpd-xferlog.log', 'vsftpd', 'xferlog')
      assert.deepEqual(r.dead, [])
      assert.equal(r.events.length, 4)
      const up = find(r.events, { action: 'ftp_upload', ip: '::1', path: abs('up6-cap.bin') })
      assert.equal(up.file?.size, 4096)
      assert.equal(up.ftp?.transfer_mode, 'binary')
      assert.equal(up.ftp?.access_mode, 'real')
      assert.equal(up.event.dataset, 'vsftpd.xferlog')
      find(r.events, { action: 'ftp_download', ip: '127.0.0.1', user: USER, path: abs('up-cap.txt') })
    })

    it('reads proftpd deletions (direction d)', () => {
      const r = collect('proftpd-xferlog.log', 'proftpd', 'xferlog')
      assert.deepEqual(r.dead, [])
      const del = find(r.events, { action: 'ftp_delete', ip: '::1', path: abs('renamed6-cap.bin') })
      assert.deepEqual(del.event.type, ['deletion'])
      assert.equal(del.ftp?.direction, 'delete')
    })

    it('keeps spaces in a file name and marks an incomplete transfer as failed', () => {
      const l = line('vsftpd-xferlog.log', / i r /)
      const spaced = event('vsftpd', 'xferlog', l.replace('up-cap.txt', 'my file b _ i.txt'))
      assert.equal(spaced.file?.path, abs('my file b _ i.txt'))
      const cut = event('vsftpd', 'xferlog', l.replace(/ c$/, ' i'))
      assert.equal(cut.event.outcome, 'failure')
      assert.equal(cut.file?.size, undefined)
      assert.equal(cut.ftp?.bytes, V4_SIZE)
    })

    it('rejects a line that is not xferlog', () => {
      assert.equal(parse('proftpd', 'xferlog', 'Sun Nov 29 07:09:26 2026 0 127.0.0.1 11').kind, 'error')
      assert.equal(parse('proftpd', 'xferlog', line('proftpd-xferlog.log', / d r /).replace('Nov 29', 'Nov 31')).kind, 'error')
    })
  })

  describe('proftpd ExtendedLog (auditline LogFormat)', () => {
    const F = 'proftpd-extended.log'

    it('covers every action from IPv4 and IPv6, with the session pid', () => {
      const r = collect(F, 'proftpd', 'extended')
      assert.deepEqual(r.dead, [])
      assertFullCoverage(r.events, abs)
      for (const e of r.events) assert.match(String(e.ftp?.session_id), /^\d+$/)
    })

    it('takes the name a refused client sent, the reply code and the offset-qualified time', () => {
      const l = line(F, /\tPASS\t.*\t530\t/)
      const e = event('proftpd', 'extended', l)
      assert.equal(e.user?.name, USER)
      assert.equal(e.ftp?.response_code, 530)
      assert.equal(e.ftp?.command, 'PASS')
      const [time] = l.split('\t') as [string]
      assert.equal(e['@timestamp'], new Date(time.replace(' ', 'T').replace(',', '.').replace(/([+-]\d{2})(\d{2})$/, '$1:$2')).toISOString())
    })

    it('reads a rename from RNTO (RNFR path → new path) and skips the RNFR', () => {
      assert.equal(parse('proftpd', 'extended', line(F, /\tRNFR\t.*\t350\t/)).kind, 'skip')
      const e = event('proftpd', 'extended', line(F, /\tRNTO\t/))
      assert.equal(e.ftp?.command, 'RNTO')
      assert.ok(e.file?.target_path?.startsWith(`${HOME}/renamed`))
    })

    it('keeps the size of a deleted file', () => {
      const e = event('proftpd', 'extended', line(F, /\tDELE\t.*renamed-cap\.txt/))
      assert.equal(e.file?.size, V4_SIZE)
    })

    it('skips commands that change nothing and rejects lines of another LogFormat', () => {
      for (const cmd of ['USER', 'TYPE', 'PASV', 'EPSV', 'QUIT']) assert.equal(parse('proftpd', 'extended', line(F, new RegExp(`\\t${cmd}\\t`))).kind, 'skip', cmd)
      assert.equal(parse('proftpd', 'extended', '127.0.0.1 UNKNOWN nobody [29/Nov/2026:07:09:26 +0000] "STOR x" 226 11').kind, 'error')
      assert.equal(parse('proftpd', 'extended', line(F, /\tSTOR\t/).replace(/\t226\t/, '\tok\t')).kind, 'error')
    })
  })

  describe('proftpd SystemLog and syslog (SyslogLevel info)', () => {
    for (const file of ['proftpd-systemlog.log', 'proftpd-syslog.log', 'proftpd-syslog-3164.log']) {
      it(`reads sessions and logins from ${file}`, () => {
        const r = collect(file, 'proftpd', 'syslog')
        assert.deepEqual(r.dead, [])
        for (const ip of ['127.0.0.1', '::1']) {
          find(r.events, { action: 'ftp_connect', ip })
          find(r.events, { action: 'ftp_disconnect', ip })
          find(r.events, { action: 'ftp_login', outcome: 'success', user: USER, ip })
          const bad = find(r.events, { action: 'ftp_login', outcome: 'failure', user: USER, ip })
          assert.equal(bad.event.reason, 'Incorrect password')
        }
        // STARTUP/SHUTDOWN and rsyslogd's own line are skipped.
        assert.ok(r.skipped >= 3)
        assert.equal(r.events[0]?.host?.hostname, 'vm')
      })
    }

    it('keeps the session pid as ftp.session_id', () => {
      const l = line('proftpd-syslog.log', /Login successful/)
      const e = event('proftpd', 'syslog', l)
      assert.equal(e.ftp?.session_id, /proftpd\[(\d+)\]/.exec(l)?.[1])
    })

    it('skips other programs and rejects lines without a header', () => {
      assert.equal(parse('proftpd', 'syslog', line('proftpd-syslog.log', /rsyslogd:/)).kind, 'skip')
      assert.equal(parse('proftpd', 'syslog', 'USER auditline-ftp: Login successful.').kind, 'error')
    })
  })

  describe('pure-ftpd stats transfer log (-O stats:)', () => {
    it('reads transfers with the epoch time and the start.pid session id', () => {
      const r = collect('pure-ftpd-stats.log', 'pure-ftpd', 'stats')
      assert.deepEqual(r.dead, [])
      assert.equal(r.events.length, 4)
      const l = line('pure-ftpd-stats.log', / ::1 U /)
      const e = find(r.events, { action: 'ftp_upload', ip: '::1', path: abs('up6-cap.bin'), user: USER })
      assert.equal(e['@timestamp'], new Date(Number(l.split(' ')[0]) * 1000).toISOString())
      assert.equal(e.ftp?.session_id, l.split(' ')[1])
      assert.equal(e.process?.pid, parseInt(String(l.split(' ')[1]?.split('.')[1]), 16))
      find(r.events, { action: 'ftp_download', ip: '127.0.0.1', path: abs('up-cap.txt') })
    })

    it('rejects a malformed line', () => {
      assert.equal(parse('pure-ftpd', 'stats', 'yesterday someone uploaded something').kind, 'error')
    })
  })

  describe('pure-ftpd syslog (-d -d -1)', () => {
    const rel = (n: string): string => n
    for (const file of ['pure-ftpd-syslog.log', 'pure-ftpd-syslog-3164.log']) {
      it(`covers every action from IPv4 and IPv6 in ${file}`, () => {
        const r = collect(file, 'pure-ftpd', 'syslog')
        assert.deepEqual(r.dead, [])
        // Uploads, downloads and deletions carry absolute paths; the rest what the client sent.
        for (const ip of ['127.0.0.1', '::1']) {
          const v6 = ip === '::1'
          find(r.events, { action: 'ftp_upload', ip, path: abs(v6 ? 'up6-cap.bin' : 'up-cap.txt') })
          find(r.events, { action: 'ftp_download', ip, path: abs(v6 ? 'up6-cap.bin' : 'up-cap.txt') })
          find(r.events, { action: 'ftp_delete', outcome: 'success', ip, path: abs(v6 ? 'renamed6-cap.bin' : 'renamed-cap.txt') })
        }
        assertFullCoverage(r.events, rel, false)
      })
    }

    it('reads mkdir from the reply to the remembered MKD command, and nothing from the command alone', () => {
      const parser = createFtpParser('pure-ftpd', 'syslog')
      assert.equal(parse('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /Command \[mkd\] \[dir-cap\]/), parser).kind, 'skip')
      const e = event('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /\] 257 "dir-cap"/), parser)
      assert.equal(e.file?.path, 'dir-cap')
      assert.equal(e.file?.type, 'dir')
      assert.equal(e.ftp?.command, 'MKD')
      assert.equal(e.ftp?.response_code, 257)
      // A reply whose command was not seen (collector restarted between the two lines) makes no event.
      assert.equal(parse('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /\] 257 "dir-cap"/)).kind, 'skip')
    })

    it('reads a refused login with the user name', () => {
      const e = event('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /\(\?@::1\) \[WARNING\] Authentication failed/))
      assert.equal(e.user?.name, USER)
      assert.equal(e.source?.ip, '::1')
      assert.deepEqual(e.event.type, ['start', 'denied'])
    })

    it('skips other programs and DEBUG noise, rejects a line without a syslog header', () => {
      assert.equal(parse('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /rsyslogd:/)).kind, 'skip')
      assert.equal(parse('pure-ftpd', 'syslog', line('pure-ftpd-syslog.log', /\[DEBUG\] 220-/)).kind, 'skip')
      assert.equal(parse('pure-ftpd', 'syslog', '(auditline-ftp@::1) [NOTICE] Deleted //home/x').kind, 'error')
    })
  })
})
