import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { compilePrefix, createPostgresqlParser, pgTime, splitCsv, type PostgresqlFormat } from '../../../ingest/postgresql/index.ts'
import { parserFor } from '../../../ingest/sources.ts'
import { processLine } from '../../../ingest/common/collector.ts'
import type { LineParser } from '../../../ingest/common/parser.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { DeadLetter } from '../../../lib/deadletter.ts'
import { isAuditError } from '../../../lib/errors.ts'

// Real lines: PostgreSQL 15 with log_destination='stderr,csvlog,jsonlog', log_statement=ddl, log_connections,
// log_disconnections, log_line_prefix='%m [%p] %q%u@%d %r ', written by test/fixtures/db/capture.ts.
const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'db')
const FILES: Record<PostgresqlFormat, string> = { stderr: 'postgresql.log', csvlog: 'postgresql.csv', jsonlog: 'postgresql.json' }
const CANARY = 'S3cret-Canary-9f2'
const PREFIX = '%m [%p] %q%u@%d %r '
const readAt = new Date('2026-11-29T08:00:00.000Z')

function text (format: PostgresqlFormat): string {
  return readFileSync(join(FIXTURES, FILES[format]), 'utf8')
}

interface Line { text: string, offset: number }

/** Physical lines with their byte offsets, as the tailer yields them. */
function linesOf (content: string): Line[] {
  const out: Line[] = []
  let offset = 0
  for (const t of content.split('\n')) {
    if (t !== '') out.push({ text: t, offset })
    offset += Buffer.byteLength(t) + 1
  }
  return out
}

function parser (format: PostgresqlFormat, opts: { maxRecordBytes?: number, timezone?: string, logLinePrefix?: string } = {}): LineParser {
  return createPostgresqlParser(format, { logLinePrefix: opts.logLinePrefix ?? PREFIX, maxRecordBytes: opts.maxRecordBytes ?? 1048576, ...(opts.timezone === undefined ? {} : { timezone: opts.timezone }) })
}

/** Lines through the collector's own line handling (parse → finalize → schema check). */
function collect (lines: readonly Line[], p: LineParser, path = '/var/log/postgresql/postgresql.log'): { events: AuditEvent[], dead: DeadLetter[], skipped: number } {
  const out = { events: [] as AuditEvent[], dead: [] as DeadLetter[], skipped: 0 }
  for (const l of lines) {
    const bytes = Buffer.from(l.text)
    const r = processLine({ bytes, truncated: false, length: bytes.length, path, fileKey: '1:2', generation: 0, offset: l.offset }, p, { host: 'db-1', source: 'pg' }, out.events.length + out.dead.length, readAt)
    if ('event' in r) out.events.push(r.event)
    else if ('dead' in r) out.dead.push(r.dead)
    else out.skipped++
  }
  return out
}

function find (events: readonly AuditEvent[], pred: (e: AuditEvent) => boolean, what: string): AuditEvent {
  const e = events.find(pred)
  assert.ok(e !== undefined, `no event: ${what}`)
  return e
}

const summary = (e: AuditEvent): string => [e['@timestamp'], e.event.action, e.event.outcome, e.user?.name, e.user?.target?.name, e.source?.ip ?? e.source?.address, e.source?.port, e.db?.name, JSON.stringify(e.db?.object)].join('|')

for (const format of ['stderr', 'csvlog', 'jsonlog'] as const) {
  describe(`postgresql parser, ${format} (real PostgreSQL 15 log)`, () => {
    const { events, dead } = collect(linesOf(text(format)), parser(format))

    it('parses the whole fixture without dead letters into valid db events', () => {
      assert.equal(dead.length, 0, JSON.stringify(dead))
      assert.ok(events.length >= 30, `${events.length} events`)
      for (const e of events) {
        assert.equal(e.auditline.class, 'db')
        assert.equal(e.event.dataset, 'postgresql.log')
        assert.equal(e.db?.system, 'postgresql')
        assert.equal(e.event.original, undefined)
        assert.equal(e.event.kind, 'event')
      }
    })

    it('never lets the canary password out, although the server logged it in clear text', () => {
      assert.ok(text(format).includes(CANARY), 'the fixture holds the password as PostgreSQL wrote it')
      for (const e of events) assert.ok(!JSON.stringify(e).includes(CANARY) && !JSON.stringify(e).includes('S3cret'), JSON.stringify(e))
    })

    it('records logins over IPv4, IPv6 and the Unix socket with address and port', () => {
      const v4 = find(events, e => e.event.action === 'db_connect' && e.event.outcome === 'success' && e.source?.ip === '127.0.0.1', 'login over 127.0.0.1')
      assert.equal(v4.user?.name, 'postgres')
      assert.equal(v4.db?.name, 'postgres')
      assert.equal(typeof v4.source?.port, 'number')
      assert.deepEqual(v4.event.category, ['authentication', 'session'])
      assert.equal(v4.process?.name, 'postgres')
      const v6 = find(events, e => e.event.action === 'db_connect' && e.user?.name === 'app_rw' && e.source?.ip === '::1', 'app_rw over ::1')
      assert.equal(v6.db?.name, 'shop')
      const local = find(events, e => e.event.action === 'db_connect' && e.source?.address === '[local]', 'socket login')
      assert.equal(local.source?.ip, undefined)
      find(events, e => e.event.action === 'db_disconnect' && e.user?.name === 'app_rw' && e.source?.ip === '::1', 'disconnect of app_rw')
    })

    it('records wrong passwords and unknown roles as failed logins', () => {
      const f = find(events, e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'app_rw', 'failed login of app_rw')
      assert.deepEqual(f.event.category, ['authentication'])
      assert.equal(f.source?.ip, '127.0.0.1')
      assert.equal(f.event.reason, 'password authentication failed for user "app_rw"')
      if (format !== 'stderr') assert.equal(f.db?.error_code, '28P01')
      find(events, e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'nosuchuser' && e.source?.ip === '::1', 'failed login of an unknown role over ::1')
    })

    it('records CREATE/DROP DATABASE with who, from where and which database; outcome unknown (logged before it runs)', () => {
      const c = find(events, e => e.event.action === 'db_create_database' && e.db?.object === 'shop', 'CREATE DATABASE shop')
      assert.equal(c.user?.name, 'postgres')
      assert.equal(c.source?.ip, '127.0.0.1')
      assert.equal(c.event.outcome, 'unknown')
      assert.deepEqual(c.event.type, ['creation'])
      assert.equal(c.db?.statement, 'CREATE DATABASE shop;')
      const d = find(events, e => e.event.action === 'db_drop_database' && e.db?.object === 'shop', 'DROP DATABASE shop')
      assert.deepEqual(d.event.type, ['deletion'])
      find(events, e => e.event.action === 'db_drop_database' && e.db?.object === 'tmpdb' && e.source?.address === '[local]', 'DROP DATABASE tmpdb over the socket')
    })

    it('records tables, roles, grants and revokes', () => {
      find(events, e => e.event.action === 'db_create_table' && e.db?.object === 'orders' && e.source?.ip === '::1' && e.db?.name === 'shop', 'CREATE TABLE orders')
      find(events, e => e.event.action === 'db_alter_table' && e.db?.object === 'orders', 'ALTER TABLE')
      find(events, e => e.event.action === 'db_drop_table' && e.db?.object === 'orders', 'DROP TABLE')
      const role = find(events, e => e.event.action === 'db_create_role' && e.user?.target?.name === 'app_rw' && e.event.outcome === 'unknown', 'CREATE ROLE app_rw')
      assert.equal(role.db?.statement, "CREATE ROLE app_rw LOGIN PASSWORD '*****';")
      assert.deepEqual(role.event.category, ['database', 'iam'])
      const alter = find(events, e => e.event.action === 'db_alter_role' && e.event.outcome === 'unknown', 'ALTER ROLE … $pw$…$pw$')
      assert.equal(alter.db?.statement, "ALTER ROLE app_rw PASSWORD '*****';")
      const g = find(events, e => e.event.action === 'db_grant', 'GRANT')
      assert.deepEqual(g.db?.privileges, ['SELECT', 'INSERT'])
      assert.equal(g.user?.target?.name, 'app_rw')
      find(events, e => e.event.action === 'db_revoke' && e.db?.object === 'orders', 'REVOKE')
      const mapping = find(events, e => e.db?.operation === 'CREATE USER MAPPING', 'CREATE USER MAPPING')
      assert.equal(mapping.db?.statement, "CREATE USER MAPPING FOR app_rw SERVER remote_db OPTIONS (user '*****', password '*****');")
      find(events, e => e.event.action === 'db_drop_role' && e.db?.object === 'app "ro"', 'DROP ROLE "app ""ro"""')
    })

    it('records failed statements a second time with outcome failure and the error, secrets masked', () => {
      const exists = find(events, e => e.event.action === 'db_create_role' && e.event.outcome === 'failure' && e.user?.target?.name === 'app_rw', 'failed CREATE ROLE')
      assert.equal(exists.event.reason, 'role "app_rw" already exists')
      if (format !== 'stderr') assert.equal(exists.db?.error_code, '42710')
      const syntax = find(events, e => e.event.action === 'db_alter_role' && e.event.outcome === 'failure', 'ALTER ROLE with a bare password')
      assert.match(syntax.event.reason ?? '', /^syntax error at or near "\*\*\*\*\*"/)
      assert.equal(syntax.db?.statement, "ALTER ROLE app_rw PASSWORD '*****';")
      const typo = find(events, e => e.user?.target?.name === 'typo', 'CREATE ROLE typo PASSWRD')
      assert.equal(typo.db?.statement, "CREATE ROLE typo PASSWRD '*****';")
    })

    it('is deterministic: parsing again yields identical ids and hashes', () => {
      const again = collect(linesOf(text(format)), parser(format))
      assert.deepEqual(again.events.map(e => [e.event.id, e.event.hash]), events.map(e => [e.event.id, e.event.hash]))
    })
  })
}

describe('postgresql parser: the three formats agree', () => {
  it('yields the same events (time, action, outcome, user, client, database, object) from stderr, csvlog and jsonlog', () => {
    const s = collect(linesOf(text('stderr')), parser('stderr')).events.map(summary)
    const c = collect(linesOf(text('csvlog')), parser('csvlog')).events.map(summary)
    const j = collect(linesOf(text('jsonlog')), parser('jsonlog')).events.map(summary)
    assert.deepEqual(c, j)
    assert.deepEqual(s, c)
  })

  it('csvlog and jsonlog keep multi-line statements whole; stderr has their first line only', () => {
    const pick = (f: PostgresqlFormat): string | undefined => collect(linesOf(text(f)), parser(f)).events.find(e => e.db?.object === 'Weird, "name"')?.db?.statement as string | undefined
    assert.equal(pick('csvlog'), 'CREATE TABLE "Weird, ""name""" (\n  id int\n);')
    assert.equal(pick('jsonlog'), 'CREATE TABLE "Weird, ""name""" (\n  id int\n);')
    assert.equal(pick('stderr'), 'CREATE TABLE "Weird, ""name""" (')
  })
})

describe('postgresql csvlog: records that span lines', () => {
  const all = linesOf(text('csvlog'))
  // The record of the multi-line CREATE ROLE: its first line opens a quote the next line closes.
  const start = all.findIndex(l => l.text.includes('statement: CREATE ROLE ""app'))

  it('the fixture has multi-line records (quoted newlines)', () => {
    assert.ok(start >= 0)
    assert.ok(!(all[start + 1]?.text ?? '').match(/^\d{4}-/), 'the next physical line continues the record')
  })

  it('gives a joined record the id of its last line, identical on every replay from a record boundary', () => {
    const full = collect(all, parser('csvlog')).events
    const fromBoundary = collect(all.slice(start), parser('csvlog')).events
    const e = find(full, x => x.user?.target?.name === 'app "ro"' && x.event.action === 'db_create_role', 'multi-line CREATE ROLE')
    const r = find(fromBoundary, x => x.user?.target?.name === 'app "ro"' && x.event.action === 'db_create_role', 'same, replayed')
    assert.equal(r.event.id, e.event.id)
    assert.equal(e.log?.offset, all[start + 1]?.offset)
    assert.deepEqual({ ...r, event: { ...r.event, sequence: 0, hash: '' } }, { ...e, event: { ...e.event, sequence: 0, hash: '' } })
  })

  it('a restart inside a record yields one content-free db_record_withheld event, then continues normally', () => {
    const { events, dead } = collect(all.slice(start + 1), parser('csvlog'))
    assert.equal(dead.length, 0)
    assert.equal(events[0]?.event.kind, 'pipeline_error')
    assert.equal(events[0]?.event.action, 'db_record_withheld')
    assert.match(events[0]?.event.reason ?? '', /without the start of its record/)
    assert.ok(events.slice(1).every(e => e.event.kind === 'event'))
    assert.ok(!JSON.stringify(events).includes('S3cret'))
    find(events, e => e.event.action === 'db_drop_database' && e.db?.object === 'shop', 'later records')
  })

  it('a record cut off by a file switch is reported, not silently lost', () => {
    const first = all[start] as Line
    const p = parser('csvlog')
    // The first half of the record, then the file starts over (rotation): the rest never comes.
    const before = collect([first], p)
    assert.equal(before.events.length, 0)
    const after = collect(linesOf(text('csvlog')).slice(0, 3), p)
    assert.ok(after.events.some(e => e.event.action === 'db_record_withheld' && /cut off/.test(e.event.reason ?? '')))
  })

  it('a record longer than maxRecordBytes becomes db_record_withheld without its content', () => {
    const head = all[start] as Line
    const filler = Array.from({ length: 40 }, (_, i) => ({ text: `  -- filler line ${i} ${'x'.repeat(40)}`, offset: 0 }))
    let offset = head.offset + Buffer.byteLength(head.text) + 1
    const lines: Line[] = [head]
    for (const f of [...filler, { text: `  PASSWORD '${CANARY}';",,,,,,,,,"psql","client backend",,0`, offset: 0 }]) {
      lines.push({ text: f.text, offset })
      offset += Buffer.byteLength(f.text) + 1
    }
    const { events, dead } = collect(lines, parser('csvlog', { maxRecordBytes: 1024 }))
    assert.equal(dead.length, 0)
    assert.equal(events.length, 1)
    assert.equal(events[0]?.event.action, 'db_record_withheld')
    assert.ok(!JSON.stringify(events[0]).includes(CANARY))
  })

  it('splits CSV with doubled quotes, empty fields and embedded newlines', () => {
    assert.deepEqual(splitCsv('a,"b ""c"", d",,"x\ny",'), ['a', 'b "c", d', '', 'x\ny', ''])
    assert.equal(splitCsv('a,"b'), undefined)
    assert.equal(splitCsv('a,b"c'), undefined)
  })
})

describe('postgresql stderr: prefixes, continuation lines, bad lines', () => {
  const all = linesOf(text('stderr'))

  it('skips continuation lines (a tab first), which may hold the rest of a statement', () => {
    const cont = all.filter(l => l.text.startsWith('\t'))
    assert.ok(cont.some(l => l.text.includes(CANARY)), 'a continuation line holds the password')
    const r = collect(cont, parser('stderr'))
    assert.equal(r.events.length + r.dead.length, 0)
  })

  it('dead-letters a line that does not match the prefix, but withholds one that may hold a password', () => {
    const plain = collect([{ text: 'some other program wrote this', offset: 0 }], parser('stderr'))
    assert.equal(plain.dead.length, 1)
    assert.match(plain.dead[0]?.reason ?? '', /log_line_prefix/)
    const secret = collect([{ text: `LOG: statement: ALTER ROLE x PASSWORD '${CANARY}'`, offset: 0 }], parser('stderr'))
    assert.equal(secret.dead.length, 0)
    assert.equal(secret.events[0]?.event.action, 'db_record_withheld')
    assert.ok(!JSON.stringify(secret.events).includes(CANARY))
  })

  it('reads other prefixes, e.g. the pgBadger style with %t, %l, %h and %a', () => {
    const p = parser('stderr', { logLinePrefix: '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ' })
    const line = '2026-11-29 07:13:47 UTC [1065]: [4-1] user=postgres,db=shop,app=psql,client=::1 LOG:  statement: DROP TABLE orders;'
    const e = collect([{ text: line, offset: 0 }], p).events[0]
    assert.equal(e?.event.action, 'db_drop_table')
    assert.equal(e?.source?.ip, '::1')
    assert.equal(e?.user?.name, 'postgres')
    assert.equal(e?.db?.name, 'shop')
    assert.equal(e?.['@timestamp'], '2026-11-29T07:13:47.000Z')
  })

  it('matches non-session lines (no user part after %q)', () => {
    const m = compilePrefix(PREFIX).match('2026-11-29 07:13:45.894 UTC [1021] LOG:  database system is ready to accept connections')
    assert.equal(m?.severity, 'LOG')
    assert.equal(m?.fields.user, undefined)
    assert.equal(m?.fields.pid, '1021')
  })

  it('refuses a prefix without a time escape or with an unknown escape', () => {
    assert.throws(() => compilePrefix('[%p] '), /time escape/)
    assert.throws(() => compilePrefix('%m %z '), /unknown escape %z/)
  })
})

describe('postgresql time zones', () => {
  it('reads UTC, numeric offsets and common abbreviations exactly', () => {
    assert.equal(pgTime('2026-11-29 07:13:47.010 UTC', undefined), '2026-11-29T07:13:47.010Z')
    assert.equal(pgTime('2026-11-29 08:13:47.010 CET', undefined), '2026-11-29T07:13:47.010Z')
    assert.equal(pgTime('2026-07-01 09:00:00.000 CEST', undefined), '2026-07-01T07:00:00.000Z')
    assert.equal(pgTime('2026-11-29 10:13:47 +03', undefined), '2026-11-29T07:13:47.000Z')
    assert.equal(pgTime('2026-11-29 01:43:47 -0530', undefined), '2026-11-29T07:13:47.000Z')
    assert.equal(pgTime('1795936427.010', undefined), '2026-11-29T07:13:47.010Z')
  })

  it('uses the timezone option for abbreviations, and refuses unknown ones without it', () => {
    assert.equal(pgTime('2026-11-29 15:13:47.010 CST', 'Asia/Shanghai'), '2026-11-29T07:13:47.010Z')
    assert.equal(pgTime('2026-11-29 07:13:47.010 XYZT', undefined), undefined)
    const line = (linesOf(text('stderr'))[0] as Line).text.replace(' UTC ', ' XYZT ')
    const r = collect([{ text: line, offset: 0 }], parser('stderr'))
    assert.equal(r.dead.length, 1)
    assert.match(r.dead[0]?.reason ?? '', /log_timezone/)
  })
})

describe('postgresql jsonlog: bad lines', () => {
  it('dead-letters a line that is not a JSON object', () => {
    const r = collect([{ text: '{"timestamp": ', offset: 0 }], parser('jsonlog'))
    assert.equal(r.dead.length, 1)
    assert.match(r.dead[0]?.reason ?? '', /not a jsonlog object/)
  })
})

describe('postgresql source registration', () => {
  it('is registered with topic db, formats stderr/csvlog/jsonlog, and validates its options', () => {
    for (const f of ['stderr', 'csvlog', 'jsonlog']) assert.equal(parserFor('postgresql', f).topic, 'db')
    assert.equal(parserFor('postgresql').parser.dataset, 'postgresql.log')
    assert.throws(() => parserFor('postgresql', 'syslog'), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID'))
    assert.throws(() => parserFor('postgresql', 'stderr', { logLinePrefix: '[%p] ' }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.logLinePrefix: needs a time escape/.test(e.message))
    assert.throws(() => parserFor('postgresql', 'stderr', { timezone: 'Nowhere/Else' }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.timezone/.test(e.message))
    assert.throws(() => parserFor('postgresql', 'csvlog', { maxRecordBytes: 10 }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.maxRecordBytes/.test(e.message))
    assert.throws(() => parserFor('postgresql', 'csvlog', { prefix: 'x' }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.prefix: unknown option/.test(e.message))
  })
})
