import assert from 'node:assert/strict'
import { clientFrom, guardedParser, MAX_STATEMENT, statementEvent } from '../../../ingest/common/db-event.ts'
import { SKIP, type LineParser } from '../../../ingest/common/parser.ts'

const ctx = { path: '/var/log/x.log', offset: 0, readAt: new Date('2026-11-29T08:00:00.000Z') }
const SECRET = 'S3cret-Canary-9f2'

describe('db events', () => {
  it('puts IPs into source.ip and everything else into source.address', () => {
    assert.deepEqual(clientFrom('127.0.0.1', 5432), { ip: '127.0.0.1', port: 5432 })
    assert.deepEqual(clientFrom('::1'), { ip: '::1' })
    assert.deepEqual(clientFrom('[::1]'), { ip: '::1' })
    assert.deepEqual(clientFrom('[local]'), { address: '[local]' })
    assert.deepEqual(clientFrom('localhost'), { address: 'localhost' })
    assert.equal(clientFrom(''), undefined)
  })

  it('cuts a very long statement after redaction and tags the event', () => {
    const sql = `CREATE TABLE t (${Array.from({ length: 2000 }, (_, i) => `c${i} int`).join(', ')}) /* password ${SECRET} */`
    const e = statementEvent({ system: 'postgresql', user: 'u' }, sql, 'unknown')
    assert.ok(e !== undefined)
    assert.equal((e.db?.statement as string).length, MAX_STATEMENT)
    assert.deepEqual(e.tags, ['db_statement_truncated'])
    assert.ok(!JSON.stringify(e).includes(SECRET))
  })

  it('scrubs a password the server echoes in its error message', () => {
    const e = statementEvent({ system: 'postgresql' }, `ALTER ROLE r PASSWORD '${SECRET}'`, 'failure', { reason: `invalid value ${SECRET} and "${SECRET}"` })
    assert.equal(e?.event.reason, 'invalid value ***** and "*****"')
  })
})

describe('guardedParser', () => {
  const throwing: LineParser = { dataset: 'x.y', eventClass: 'db', parse () { throw new Error('bug') } }

  it('turns a parser bug on a line with a password into a content-free event, not a dead letter', () => {
    const r = guardedParser('postgresql', throwing).parse(`statement: ALTER ROLE r PASSWORD '${SECRET}'`, ctx)
    assert.equal(r.kind, 'event')
    assert.ok(!JSON.stringify(r).includes(SECRET))
    assert.equal(guardedParser('postgresql', throwing).parse('checkpoint complete', ctx).kind, 'error')
  })

  it('withholds an event the schema would refuse, since the collector would dead-letter the raw line', () => {
    const bad: LineParser = { dataset: 'x.y', eventClass: 'db', parse: () => ({ kind: 'event', event: { event: { kind: 'event', category: ['database'], type: ['change'], action: '' }, db: { system: 'mariadb' } } }) }
    const r = guardedParser('mariadb', bad).parse(`CREATE USER u IDENTIFIED BY '${SECRET}'`, ctx)
    assert.equal(r.kind, 'event')
    assert.equal(r.kind === 'event' ? r.event.event.action : '', 'db_record_withheld')
    assert.equal(guardedParser('mariadb', { ...bad, parse: () => SKIP }).parse('x', ctx), SKIP)
  })
})
