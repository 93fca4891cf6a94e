import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createMariadbParser, splitQueryRest, unescapeAuditString } from '../../../ingest/mariadb/index.ts'
import { parserFor } from '../../../ingest/sources.ts'
import { processLine } from '../../../ingest/common/collector.ts'
import type { LineParser } from '../../../ingest/common/parser.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { DeadLetter } from '../../../lib/deadletter.ts'
import { isAuditError } from '../../../lib/errors.ts'

// Real lines: MariaDB 10.11 server_audit, written by test/fixtures/db/capture.ts (test/helpers/db-servers.ts scenario).
const FIXTURE = join(import.meta.dirname, '..', '..', 'fixtures', 'db', 'mariadb-audit.log')
const CANARY = 'S3cret-Canary-9f2'
const readAt = new Date('2026-11-29T08:00:00.000Z')

function fixtureLines (): string[] {
  return readFileSync(FIXTURE, 'utf8').split('\n').filter(l => l !== '')
}

/** Lines through the collector's own line handling (parse → finalize → schema check). */
function collect (lines: readonly string[], parser: LineParser = createMariadbParser({ timezone: 'UTC' })): { events: AuditEvent[], dead: DeadLetter[], skipped: number } {
  const out = { events: [] as AuditEvent[], dead: [] as DeadLetter[], skipped: 0 }
  let offset = 0
  for (const text of lines) {
    const bytes = Buffer.from(text)
    const r = processLine({ bytes, truncated: false, length: bytes.length, path: '/var/log/mysql/server_audit.log', fileKey: '1:2', generation: 0, offset }, parser, { host: 'db-1', source: 'mariadb' }, out.events.length + out.dead.length, readAt)
    offset += bytes.length + 1
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

describe('mariadb-audit parser (real server_audit log)', () => {
  const { events, dead, skipped } = collect(fixtureLines())

  it('turns every record of the fixture into a valid event, with no dead letters', () => {
    assert.equal(dead.length, 0, JSON.stringify(dead))
    assert.equal(skipped, 0)
    assert.equal(events.length, fixtureLines().length)
    for (const e of events) {
      assert.equal(e.auditline.class, 'db')
      assert.equal(e.event.dataset, 'mariadb.audit')
      assert.equal(e.db?.system, 'mariadb')
      assert.equal(e.event.original, undefined)
    }
  })

  it('never lets the canary password out, in any field of any event', () => {
    assert.ok(readFileSync(FIXTURE, 'utf8').includes('IDENTIFIED BY'), 'fixture has the statements')
    for (const e of events) assert.ok(!JSON.stringify(e).includes(CANARY), JSON.stringify(e))
  })

  it('records logins over IPv4 and IPv6 with the client IP, and socket logins as localhost', () => {
    const v4 = find(events, e => e.event.action === 'db_connect' && e.user?.name === 'admin' && e.source?.ip === '127.0.0.1', 'admin over 127.0.0.1')
    assert.equal(v4.event.outcome, 'success')
    assert.deepEqual(v4.event.category, ['authentication', 'session'])
    assert.equal(v4.host?.hostname !== undefined, true)
    const v6 = find(events, e => e.event.action === 'db_connect' && e.user?.name === 'admin' && e.source?.ip === '::1', 'admin over ::1')
    assert.equal(v6.db?.name, 'shop')
    const sock = find(events, e => e.event.action === 'db_connect' && e.user?.name === 'root', 'root over the socket')
    assert.equal(sock.source?.ip, undefined)
    assert.equal(sock.source?.address, 'localhost')
    assert.deepEqual(v4.related?.ip, ['127.0.0.1'])
  })

  it('records failed logins as authentication failures with the error number', () => {
    const f = find(events, e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'app_rw', 'failed login of app_rw')
    assert.deepEqual(f.event.category, ['authentication'])
    assert.equal(f.source?.ip, '127.0.0.1')
    assert.equal(f.db?.error_code, '1045')
    assert.match(f.event.reason ?? '', /access denied/)
    find(events, e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'nosuch' && e.source?.ip === '::1', 'failed login of an unknown user over ::1')
    find(events, e => e.event.action === 'db_disconnect' && e.user?.name === 'app_rw', 'disconnect')
  })

  it('records creating and dropping databases with who, from where and the object', () => {
    const c = find(events, e => e.event.action === 'db_create_database' && e.db?.object === 'shop', 'CREATE DATABASE shop')
    assert.equal(c.user?.name, 'admin')
    assert.equal(c.source?.ip, '127.0.0.1')
    assert.equal(c.event.outcome, 'success')
    assert.deepEqual(c.event.type, ['creation'])
    assert.equal(c.db?.operation, 'CREATE DATABASE')
    assert.equal(c.db?.object_type, 'database')
    assert.equal(c.db?.statement, 'CREATE DATABASE shop')
    const d = find(events, e => e.event.action === 'db_drop_database' && e.db?.object === 'shop', 'DROP DATABASE shop')
    assert.deepEqual(d.event.type, ['deletion'])
    find(events, e => e.event.action === 'db_drop_database' && e.db?.object === 'tmpdb' && e.source?.address === 'localhost', 'DROP DATABASE tmpdb over the socket')
  })

  it('records table changes and un-escapes the statement exactly (newlines, quotes, backslashes)', () => {
    find(events, e => e.event.action === 'db_create_table' && e.db?.object === 'orders' && e.db?.name === 'shop' && e.source?.ip === '::1', 'CREATE TABLE orders')
    find(events, e => e.event.action === 'db_alter_table' && e.db?.object === 'orders', 'ALTER TABLE orders')
    find(events, e => e.event.action === 'db_drop_table' && e.db?.object === 'orders', 'DROP TABLE orders')
    const w = find(events, e => e.event.action === 'db_create_table' && e.db?.object === "Weird, 'name'", 'the weird table')
    assert.equal(w.db?.statement, "CREATE TABLE `Weird, 'name'` (\n  id int\n)")
  })

  it('records user and role management, grants and revokes, with the target user', () => {
    const u = find(events, e => e.event.action === 'db_create_user' && e.user?.target?.name === 'app_rw' && e.event.outcome === 'success', 'CREATE USER app_rw')
    assert.deepEqual(u.event.category, ['database', 'iam'])
    assert.equal(u.db?.object, 'app_rw@%')
    assert.ok(u.related?.user?.includes('app_rw') && u.related.user.includes('admin'))
    assert.match(u.db?.statement as string, /IDENTIFIED BY \*\*\*\*\*$/)
    const again = find(events, e => e.event.action === 'db_create_user' && e.event.outcome === 'failure', 'the failed CREATE USER')
    assert.equal(again.db?.error_code, '1396')
    const via = find(events, e => e.event.action === 'db_create_user' && e.user?.target?.name === 'app_via', 'CREATE USER … IDENTIFIED VIA')
    assert.doesNotMatch(via.db?.statement as string, /S3cret/)
    const g = find(events, e => e.event.action === 'db_grant' && e.db?.object === 'shop.orders', 'GRANT on shop.orders')
    assert.deepEqual(g.db?.privileges, ['SELECT', 'INSERT'])
    assert.equal(g.user?.target?.name, 'app_rw')
    const r = find(events, e => e.event.action === 'db_revoke', 'REVOKE')
    assert.deepEqual(r.db?.privileges, ['INSERT'])
    find(events, e => e.event.action === 'db_create_role' && e.db?.object === 'auditor', 'CREATE ROLE auditor')
    find(events, e => e.event.action === 'db_grant' && e.db?.object_type === 'role' && e.db?.object === 'auditor', 'GRANT auditor')
    find(events, e => e.event.action === 'db_drop_user' && e.user?.target?.name === 'app_via', 'DROP USER')
  })

  it('reads the timestamp in the configured zone', () => {
    const line = fixtureLines()[0] as string
    const ts = line.slice(0, 17)
    const iso = `${ts.slice(0, 4)}-${ts.slice(4, 6)}-${ts.slice(6, 8)}T${ts.slice(9)}.000Z`
    assert.equal(collect([line]).events[0]?.['@timestamp'], iso)
    const berlin = collect([line], createMariadbParser({ timezone: 'Europe/Berlin' })).events[0]?.['@timestamp'] as string
    assert.equal(Date.parse(iso) - Date.parse(berlin), 3_600_000) // November: CET = UTC+1
  })

  it('is deterministic: the same lines give the same ids and hashes', () => {
    const again = collect(fixtureLines())
    assert.deepEqual(again.events.map(e => [e.event.id, e.event.hash]), events.map(e => [e.event.id, e.event.hash]))
  })
})

describe('mariadb-audit parser (edge cases built from the real record format)', () => {
  const real = fixtureLines().find(l => l.includes("'CREATE DATABASE shop',0")) as string
  const head = real.slice(0, real.indexOf(',QUERY,') + 7)

  it('redacts passwords the plugin does not mask (older plugins, IDENTIFIED VIA … USING, SET PASSWORD)', () => {
    for (const q of [
      `CREATE USER \\'e\\'@\\'%\\' IDENTIFIED VIA ed25519 USING PASSWORD(\\'${CANARY}\\')`,
      `SET PASSWORD FOR \\'u\\'@\\'%\\' = PASSWORD(\\'${CANARY}\\')`,
      `CREATE USER \\'u\\'@\\'%\\' IDENTIFIED BY \\'${CANARY}\\'`,
      `ALTER USER u IDENTIFIED BY ${CANARY}`
    ]) {
      const { events } = collect([`${head}shop,'${q}',0`])
      assert.equal(events.length, 1, q)
      assert.ok(!JSON.stringify(events[0]).includes(CANARY), JSON.stringify(events[0]))
    }
  })

  it('splits records whose database name holds a comma and a quote', () => {
    assert.deepEqual(splitQueryRest("we,'ird,'DROP TABLE t',0"), { database: "we,'ird", query: 'DROP TABLE t', retcode: '0' })
    assert.deepEqual(splitQueryRest("shop,'CREATE TABLE `a,\\'b` (x int)',1050"), { database: 'shop', query: "CREATE TABLE `a,'b` (x int)", retcode: '1050' })
  })

  it("undoes escape_string: \\n \\t \\r \\b \\f \\' \\\\", () => {
    assert.equal(unescapeAuditString("a\\nb\\tc\\rd\\be\\ff\\'g\\\\h"), "a\nb\tc\rd\be\ff'g\\h")
    assert.equal(unescapeAuditString("a'b"), undefined)
  })

  it('skips DML (server_audit_events=QUERY) and TABLE records', () => {
    const { events, skipped } = collect([`${head}shop,'SELECT * FROM orders',0`, real.replace(/,QUERY,.*$/, ',READ,shop,orders,')])
    assert.equal(events.length, 0)
    assert.equal(skipped, 2)
  })

  it('dead-letters a line that is not a server_audit record, with the reason', () => {
    const { dead } = collect(['this is not an audit record'])
    assert.equal(dead.length, 1)
    assert.equal(dead[0]?.code, 'AUD_ERR_INGEST_PARSE')
    assert.match(dead[0]?.reason ?? '', /not a server_audit record/)
  })

  it('withholds the content of a malformed line that may carry a password instead of dead-lettering it', () => {
    const { events, dead } = collect([`garbage IDENTIFIED BY '${CANARY}'`])
    assert.equal(dead.length, 0)
    assert.equal(events[0]?.event.kind, 'pipeline_error')
    assert.equal(events[0]?.event.action, 'db_record_withheld')
    assert.ok(!JSON.stringify(events[0]).includes(CANARY))
  })
})

describe('mariadb-audit source registration', () => {
  it('is registered with topic db and validates its options', () => {
    const { parser, topic } = parserFor('mariadb-audit', 'file', { timezone: 'UTC' })
    assert.equal(topic, 'db')
    assert.equal(parser.eventClass, 'db')
    assert.throws(() => parserFor('mariadb-audit', undefined, { timezone: 'Mars/Olympus' }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.timezone/.test(e.message))
    assert.throws(() => parserFor('mariadb-audit', undefined, { tz: 'UTC' }), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID') && /options\.tz: unknown option/.test(e.message))
    assert.throws(() => parserFor('mariadb-audit', 'syslog'), (e: unknown) => isAuditError(e, 'AUD_ERR_CONFIG_INVALID'))
  })
})
