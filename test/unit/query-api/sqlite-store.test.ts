import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { indexName } from '../../../lib/elasticsearch.ts'
import { isAuditError } from '../../../lib/errors.ts'
import { verifyBundle } from '../../../lib/evidence.ts'
import { generateSealKey, type SealCheckpoint } from '../../../lib/seal.ts'
import { chainCheckpoints, loadSealKey, planTrees } from '../../../indexer/elasticsearch/seal.ts'
import { SqliteSealStore } from '../../../indexer/sqlite/seal-store.ts'
import { SqliteStore } from '../../../indexer/sqlite/store.ts'
import type { StatsDocument } from '../../../anonymizer/stats/record.ts'
import { runExport } from '../../../query-api/exports.ts'
import { SqliteEventStore, sqliteSeals } from '../../../query-api/store/sqlite.ts'
import type { EventFilter } from '../../../query-api/store/types.ts'
import { resealed } from '../../helpers/audit-events.ts'
import { auditEvent, SEARCH_USERS, searchSeed } from '../../helpers/query-api.ts'
import { statsDoc } from '../../helpers/stats-docs.ts'

const PREFIX = 'al'
const USERS = SEARCH_USERS
const seed = searchSeed

let dir: string

before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-sqlite-query-')) })
after(async () => { await rm(dir, { recursive: true, force: true }) })

/** A fresh store file, written through the embedded indexer's own write side. */
function openStore (name: string): SqliteStore {
  return SqliteStore.open(join(dir, `${name}.db`), { indexPrefix: PREFIX })
}

function indexEvents (store: SqliteStore, events: readonly AuditEvent[]): ReturnType<SqliteStore['indexEvents']> {
  return store.indexEvents(events.map(doc => ({ index: indexName(PREFIX, doc.auditline.class, doc['@timestamp']), id: doc.event.id, doc })))
}

function indexStats (store: SqliteStore, docs: readonly StatsDocument[]): void {
  store.indexStats(docs.map(doc => ({ index: indexName(PREFIX, 'stats', doc.period.start), id: doc.id, doc })))
}

/** Sorted by (@timestamp, event.id), the stores' order. */
function inOrder (events: readonly AuditEvent[], order: 'asc' | 'desc'): string[] {
  const sorted = [...events].sort((a, b) => Date.parse(a['@timestamp']) - Date.parse(b['@timestamp']) || (a.event.id < b.event.id ? -1 : 1))
  return (order === 'asc' ? sorted : sorted.reverse()).map(e => e.event.id)
}

const ids = (events: readonly AuditEvent[]): string[] => events.map(e => e.event.id).sort()

/** Records the SQL of every statement `db` prepares. */
function recordPrepares (db: Database.Database): { sql: string[], explain: (sql: string) => string[] } {
  const prepare = db.prepare.bind(db)
  const sql: string[] = []
  db.prepare = ((text: string) => {
    sql.push(text)
    return prepare(text)
  }) as typeof db.prepare
  // The plan does not depend on the values: every parameter is bound to null.
  const explain = (text: string): string[] => (prepare(`EXPLAIN QUERY PLAN ${text}`).all(...new Array<null>(text.split('?').length - 1).fill(null)) as Array<{ detail: string }>).map(r => r.detail)
  return { sql, explain }
}

async function rejection (p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  assert.fail('expected a rejection')
}

describe('SQLite event store: search (query-api/store/sqlite.ts)', () => {
  let store: SqliteStore
  let events: SqliteEventStore
  const base = Date.UTC(2026, 10, 20)
  const seeded = seed(300, base)
  const later = (minutes: number): string => new Date(base + (400 + minutes) * 60_000).toISOString()
  const quota = resealed(auditEvent({ at: later(1), action: 'mail_quota', user: 'frank', host: 'mx01', eventClass: 'panel', category: ['configuration'] }),
    e => { e.event.reason = 'Disk quota exceeded for mailbox info@shop.example' })
  const rejected = resealed(auditEvent({ at: later(2), action: 'ssh_login_failed', user: 'gina', host: 'web03', outcome: 'failure' }),
    e => { e.event.reason = 'password OR key rejected' })
  const panel = auditEvent({
    at: later(3),
    action: 'panel_change',
    user: 'erin',
    host: 'panel01',
    eventClass: 'panel',
    category: ['configuration', 'iam'],
    extra: { panel: { ticket_id: 'T-4711', customer: 'cust-42', object_id: 'mailbox-9' } }
  })
  const sshSession = auditEvent({ at: later(4), action: 'ssh_session_open', user: 'anna', host: 'web01', category: ['session'], extra: { ssh: { session_id: 'sess-1' } } })
  const ftpSession = auditEvent({
    at: later(5),
    action: 'ftp_upload',
    user: 'ftp-cust',
    host: 'ftp01',
    eventClass: 'ftp',
    category: ['file'],
    extra: { ftp: { session_id: 'sess-2' }, file: { path: '/srv/www/shop/index.php' } }
  })
  const dbDrop = auditEvent({
    at: later(6),
    action: 'db_drop_database',
    user: 'dba',
    host: 'db02',
    eventClass: 'db',
    category: ['database'],
    extra: { db: { connection_id: '77', statement: 'DROP DATABASE shop_prod' } }
  })
  const german = resealed(auditEvent({ at: later(7), action: 'ssh_login_failed', user: 'hans', host: 'web04', outcome: 'failure' }),
    e => { e.event.reason = 'Zugriff verweigert für Benutzer' })
  const specials = [quota, rejected, panel, sshSession, ftpSession, dbDrop, german]
  const all = [...seeded, ...specials]

  before(() => {
    store = openStore('search')
    indexEvents(store, all)
    events = new SqliteEventStore(store.db)
  })
  after(() => { store.close() })

  async function search (filter: EventFilter): Promise<{ events: AuditEvent[], total: number }> {
    const page = await events.searchEvents(filter, { size: 500, order: 'desc' })
    assert.equal(page.totalIsLowerBound, false)
    return page
  }

  const inRange = (e: AuditEvent): boolean => Date.parse(e['@timestamp']) >= base + 60 * 60_000 && Date.parse(e['@timestamp']) < base + 120 * 60_000
  const cases: Array<[string, EventFilter, (e: AuditEvent) => boolean]> = [
    ['user.name', { user: ['anna'] }, e => e.user?.name === 'anna'],
    ['two users', { user: ['anna', 'bob'] }, e => e.user?.name === 'anna' || e.user?.name === 'bob'],
    ['host.name', { host: ['db01'] }, e => e.host?.name === 'db01'],
    ['two hosts', { host: ['db01', 'web02'] }, e => e.host?.name === 'db01' || e.host?.name === 'web02'],
    ['event.action', { action: ['db_drop_database'] }, e => e.event.action === 'db_drop_database'],
    ['event.outcome', { outcome: ['failure'] }, e => e.event.outcome === 'failure'],
    ['a class', { eventClass: ['panel'] }, e => e.auditline.class === 'panel'],
    ['two classes', { eventClass: ['ftp', 'db'] }, e => e.auditline.class === 'ftp' || e.auditline.class === 'db'],
    ['a category (one of several values of an event)', { category: ['iam'] }, e => e.event.category.includes('iam')],
    ['two categories', { category: ['session', 'database'] }, e => e.event.category.includes('session') || e.event.category.includes('database')],
    ['an IPv4 CIDR', { sourceIp: '192.0.2.0/25' }, e => /^192\.0\.2\.(\d+)$/.test(e.source?.ip ?? '') && Number(e.source?.ip?.split('.')[3]) < 128],
    ['an IPv4 address', { sourceIp: '192.0.2.8' }, e => e.source?.ip === '192.0.2.8'],
    ['an IPv4 block with host bits set (they are ignored)', { sourceIp: '192.0.2.77/30' }, e => ['192.0.2.76', '192.0.2.78'].includes(e.source?.ip ?? '')],
    ['an IPv6 address', { sourceIp: '2001:db8::3' }, e => e.source?.ip === '2001:db8::3'],
    ['an IPv6 CIDR', { sourceIp: '2001:db8::/124' }, e => /^2001:db8::[0-9a-f]$/.test(e.source?.ip ?? '')],
    ['the IPv4-mapped IPv6 form of an IPv4 block', { sourceIp: '::ffff:192.0.2.0/120' }, e => e.source?.ip?.startsWith('192.0.2.') === true],
    ['all of IPv4', { sourceIp: '0.0.0.0/0' }, e => e.source?.ip?.includes('.') === true],
    ['all of IPv6 (IPv4 included, as mapped addresses)', { sourceIp: '::/0' }, e => e.source?.ip !== undefined],
    ['a time range (from inclusive, to exclusive)', { from: new Date(base + 60 * 60_000).toISOString(), to: new Date(base + 120 * 60_000).toISOString() }, inRange],
    ['a ticket', { ticket: 'T-4711' }, e => e === panel],
    ['a customer', { customer: 'cust-42' }, e => e === panel],
    ['a stream', { stream: 'db01/var/log/sshd.log' }, e => e.auditline.stream === 'db01/var/log/sshd.log'],
    ['an ssh session', { session: 'sess-1' }, e => e === sshSession],
    ['an ftp session', { session: 'sess-2' }, e => e === ftpSession],
    ['a database connection', { session: '77' }, e => e === dbDrop],
    ['combined filters', { user: ['carol'], host: ['web01'], outcome: ['success'] }, e => e.user?.name === 'carol' && e.host?.name === 'web01' && e.event.outcome === 'success'],
    ['empty lists (no filter)', { user: [], host: [] }, () => true]
  ]
  for (const [what, filter, match] of cases) {
    it(`returns exactly the events matching ${what}`, async () => {
      const expected = all.filter(match)
      assert.ok(expected.length > 0, 'the filter matches something')
      const page = await search(filter)
      assert.equal(page.total, expected.length)
      assert.deepEqual(ids(page.events), ids(expected))
    })
  }

  it('returns the stored documents unchanged', async () => {
    const page = await search({ ticket: 'T-4711' })
    assert.deepEqual(page.events, [panel])
  })

  it('finds nothing for an unknown value, and refuses a source.ip that is no address', async () => {
    assert.equal((await search({ user: ['nobody'] })).total, 0)
    assert.equal((await search({ session: 'sess-9' })).total, 0)
    const err = await rejection(events.searchEvents({ sourceIp: '300.1.2.3' }, { size: 10, order: 'desc' }))
    assert.ok(isAuditError(err) && err.code === 'AUD_ERR_API_BAD_REQUEST', String(err))
  })

  const text: Array<[string, string, AuditEvent[]]> = [
    ['a word of event.reason', 'quota', [quota]],
    ['words in any case, any of them (OR)', 'QUOTA nonexistent', [quota]],
    ['db.statement, file.path, user.name, host.name and panel.object_id', 'shop_prod index.php erin mx01', [dbDrop, ftpSession, panel, quota]],
    ['a word that is in several fields', 'mailbox', [quota, panel]],
    ['"a OR b": OR is a word, not an operator', 'nonexistent OR quota', [quota, rejected]],
    ['a lone quote', '"quota', [quota]],
    ['a quoted phrase as its words', '"exceeded quota"', [quota]],
    ['`*` (no prefix search)', 'quot*', []],
    ['`-` (no negation)', '-quota', [quota]],
    ['NEAR( (no proximity query)', 'NEAR(quota exceeded, 1)', [quota]],
    ['a column filter (no column syntax)', 'text:rejected', [rejected]],
    ['a word with `_` as one word (its parts adjacent)', 'prod_shop', []],
    ['letters beyond ASCII', 'FÜR', [german]],
    ['no word at all (nothing)', '*** "-" ()', []]
  ]
  for (const [what, q, expected] of text) {
    it(`matches free text: ${what}`, async () => {
      const page = await search({ text: q })
      assert.deepEqual(ids(page.events), ids(expected))
      assert.equal(page.total, expected.length)
    })
  }

  it('combines free text with the other filters', async () => {
    assert.deepEqual(ids((await search({ text: 'quota rejected', outcome: ['failure'] })).events), ids([rejected]))
  })

  for (const order of ['asc', 'desc'] as const) {
    it(`sorts by @timestamp then event.id, ${order}`, async () => {
      const page = await events.searchEvents({}, { size: 500, order })
      assert.deepEqual(page.events.map(e => e.event.id), inOrder(all, order))
      assert.equal(page.total, all.length)
    })
  }

  describe('pagination', () => {
    const at = new Date(base + 2 * 86_400_000).toISOString()
    const burst = Array.from({ length: 250 }, (_, i) => auditEvent({ at, action: 'ssh_login', user: `u${i}`, host: 'burst01' }))

    before(() => { indexEvents(store, burst) })

    for (const order of ['asc', 'desc'] as const) {
      it(`returns each of 250 events with one timestamp exactly once through the cursor (${order}), next only on full pages`, async () => {
        const seen: string[] = []
        let after: string | undefined
        let pages = 0
        for (;;) {
          const page = await events.searchEvents({ host: ['burst01'] }, { size: 23, order, ...(after === undefined ? {} : { after }) })
          pages++
          seen.push(...page.events.map(e => e.event.id))
          assert.equal(page.total, 250)
          assert.equal(page.next !== undefined, page.events.length === 23)
          if (page.next === undefined) break
          after = page.next
        }
        assert.equal(pages, 11)
        assert.deepEqual(seen, inOrder(burst, order))
      })
    }

    it('ends with an empty page after a last full one', async () => {
      let after: string | undefined
      for (let i = 0; i < 10; i++) {
        const page = await events.searchEvents({ host: ['burst01'] }, { size: 25, order: 'asc', ...(after === undefined ? {} : { after }) })
        assert.equal(page.events.length, 25)
        assert.ok(page.next !== undefined)
        after = page.next
      }
      const last = await events.searchEvents({ host: ['burst01'] }, { size: 25, order: 'asc', after })
      assert.deepEqual(last.events, [])
      assert.equal(last.next, undefined)
    })

    it('does not shift pages when newer events arrive between pages (newest first)', async () => {
      const host = 'burst02'
      const first = seed(40, base + 3 * 86_400_000).map(e => resealed(e, c => { c.host = { name: host } }))
      indexEvents(store, first)
      const seen: string[] = []
      let after: string | undefined
      for (let n = 0; ; n++) {
        const page = await events.searchEvents({ host: [host] }, { size: 7, order: 'desc', ...(after === undefined ? {} : { after }) })
        seen.push(...page.events.map(e => e.event.id))
        indexEvents(store, seed(3, base + 4 * 86_400_000 + n * 600_000).map(e => resealed(e, c => { c.host = { name: host } })))
        if (page.next === undefined) break
        after = page.next
      }
      assert.deepEqual(seen, inOrder(first, 'desc'))
    })

    it('reads the cursors of the Elasticsearch store: [epoch ms, event.id] as base64url JSON', async () => {
      const page = await events.searchEvents({ host: ['burst01'] }, { size: 1, order: 'asc' })
      const first = page.events[0] as AuditEvent
      assert.deepEqual(JSON.parse(Buffer.from(page.next as string, 'base64url').toString('utf8')), [Date.parse(at), first.event.id])
    })
  })
})

describe('SQLite event store: totals and query plans', function () {
  this.timeout(60_000)
  let store: SqliteStore
  const base = Date.UTC(2026, 9, 1)
  // 10,050 events one second apart, four users in turn.
  const many = Array.from({ length: 10_050 }, (_, i) => auditEvent({ at: new Date(base + i * 1000).toISOString(), action: 'ssh_login', user: USERS[i % 4] as string, host: 'web01' }))

  before(() => {
    store = openStore('totals')
    indexEvents(store, many)
  })
  after(() => { store.close() })

  it('counts exactly up to 10,000 and reports 10,000 as a lower bound above', async () => {
    const events = new SqliteEventStore(store.db)
    const everything = await events.searchEvents({}, { size: 10, order: 'desc' })
    assert.deepEqual([everything.total, everything.totalIsLowerBound, everything.events.length], [10_000, true, 10])
    const exactly = await events.searchEvents({ to: new Date(base + 10_000 * 1000).toISOString() }, { size: 10, order: 'desc' })
    assert.deepEqual([exactly.total, exactly.totalIsLowerBound], [10_000, false])
    const oneMore = await events.searchEvents({ to: new Date(base + 10_001 * 1000).toISOString() }, { size: 10, order: 'desc' })
    assert.deepEqual([oneMore.total, oneMore.totalIsLowerBound], [10_000, true])
    const some = await events.searchEvents({ user: ['bob'] }, { size: 10, order: 'desc' })
    assert.deepEqual([some.total, some.totalIsLowerBound], [2513, false])
    // Counts are always exact.
    assert.equal((await events.countEvents({}, 'user.name', { size: 10 })).total, 10_050)
  })

  it('serves a user filter from events_user and the plain newest-first page from events_ts without sorting', async () => {
    const rec = recordPrepares(store.db)
    const events = new SqliteEventStore(store.db)
    const pageSql = (): string => rec.sql.find(s => s.includes('ORDER BY e.ts')) as string

    await events.searchEvents({ user: ['anna'] }, { size: 50, order: 'desc' })
    const byUser = rec.explain(pageSql()).join('\n')
    assert.match(byUser, /USING (COVERING )?INDEX events_user \(user_name=\?\)/, byUser)
    assert.doesNotMatch(byUser, /SCAN e\b/, byUser)

    rec.sql.length = 0
    await events.searchEvents({}, { size: 50, order: 'desc' })
    const newest = rec.explain(pageSql()).join('\n')
    assert.match(newest, /SCAN e USING (COVERING )?INDEX events_ts/, newest)
    assert.doesNotMatch(newest, /TEMP B-TREE/, newest)

    // The next page seeks the cursor in the index instead of skipping rows.
    rec.sql.length = 0
    const first = await events.searchEvents({}, { size: 50, order: 'desc' })
    await events.searchEvents({}, { size: 50, order: 'desc', after: first.next as string })
    const next = rec.explain(pageSql()).join('\n')
    assert.match(next, /SEARCH e USING (COVERING )?INDEX events_ts \(\(ts,id\)<\(\?,\?\)\)/, next)
  })

  it('prepares each query shape once, whatever the values', async () => {
    const rec = recordPrepares(store.db)
    const events = new SqliteEventStore(store.db)
    for (const user of ['anna', 'bob', 'carol']) await events.searchEvents({ user: [user], from: new Date(base).toISOString() }, { size: 5, order: 'asc' })
    assert.equal(rec.sql.length, 2, 'one count and one page statement')
    await events.searchEvents({ user: ['anna', 'bob'], from: new Date(base).toISOString() }, { size: 5, order: 'asc' })
    await events.searchEvents({ user: ['carol', 'dave'], from: new Date(base + 1000).toISOString() }, { size: 9, order: 'asc' })
    assert.equal(rec.sql.length, 4, 'a list of several values is one more shape')
  })
})

describe('SQLite event store: counts', () => {
  let store: SqliteStore
  let events: SqliteEventStore
  // The events of the Elasticsearch counts test (test/integration/query-api/stats.int.test.ts), and one without host.
  const seeded = [
    auditEvent({ at: '2026-11-27T08:00:00Z', action: 'ssh_login', user: 'anna', host: 'web01' }),
    auditEvent({ at: '2026-11-27T09:00:00Z', action: 'ssh_login', user: 'anna', host: 'web02' }),
    auditEvent({ at: '2026-11-28T10:00:00Z', action: 'ssh_login_failed', user: 'bob', host: 'web01', outcome: 'failure' }),
    auditEvent({ at: '2026-11-28T11:00:00Z', action: 'ftp_upload', user: 'anna', host: 'ftp01', eventClass: 'ftp', category: ['file'] }),
    auditEvent({ at: '2026-11-30T11:00:00Z', action: 'ssh_login', user: 'carl', host: 'web01' })
  ]
  const hostless = resealed(auditEvent({ at: '2026-12-02T23:59:59.999Z', action: 'panel_change', user: 'erin', host: 'x', eventClass: 'panel' }), e => { delete e.host })

  before(() => {
    store = openStore('counts')
    indexEvents(store, [...seeded, hostless])
    events = new SqliteEventStore(store.db)
  })
  after(() => { store.close() })

  const upTo30th: EventFilter = { to: '2026-12-01T00:00:00Z' }

  it('counts by a field, most frequent first, ties by key', async () => {
    assert.deepEqual(await events.countEvents(upTo30th, 'event.action', { size: 10 }), {
      total: 5, other: 0, buckets: [{ key: 'ssh_login', count: 3 }, { key: 'ftp_upload', count: 1 }, { key: 'ssh_login_failed', count: 1 }]
    })
    assert.deepEqual(await events.countEvents({ user: ['anna'] }, 'host.name', { size: 10 }), {
      total: 3, other: 0, buckets: [{ key: 'ftp01', count: 1 }, { key: 'web01', count: 1 }, { key: 'web02', count: 1 }]
    })
  })

  it('returns at most size buckets and counts the rest in other', async () => {
    assert.deepEqual(await events.countEvents({ host: ['web01', 'web02'] }, 'user.name', { size: 1 }), { total: 4, other: 2, buckets: [{ key: 'anna', count: 2 }] })
  })

  it('makes no bucket of a missing value but counts it in total and other', async () => {
    const byHost = await events.countEvents({}, 'host.name', { size: 10 })
    assert.equal(byHost.total, 6)
    assert.equal(byHost.other, 1)
    assert.deepEqual(byHost.buckets.map(b => b.key), ['web01', 'ftp01', 'web02'])
  })

  it('counts by UTC day over [from, to) with every day present, zeros included', async () => {
    const range = { from: '2026-11-26T00:00:00Z', to: '2026-12-01T00:00:00Z' }
    assert.deepEqual(await events.countEvents(range, 'day', { size: 10, ...range }), {
      total: 5,
      other: 0,
      buckets: [
        { key: '2026-11-26', count: 0 }, { key: '2026-11-27', count: 2 }, { key: '2026-11-28', count: 2 }, { key: '2026-11-29', count: 0 }, { key: '2026-11-30', count: 1 }
      ]
    })
    // A range without events is all zeros; a range ending at midnight does not open the next day.
    const empty = { from: '2026-11-01T00:00:00Z', to: '2026-11-04T00:00:00Z' }
    assert.deepEqual((await events.countEvents(empty, 'day', { size: 10, ...empty })).buckets.map(b => [b.key, b.count]), [['2026-11-01', 0], ['2026-11-02', 0], ['2026-11-03', 0]])
  })

  it('counts by day without a range from the first to the last day with events, gaps as zeros (date_histogram)', async () => {
    const byDay = await events.countEvents({}, 'day', { size: 10 })
    assert.deepEqual(byDay.buckets.map(b => [b.key, b.count]), [
      ['2026-11-27', 2], ['2026-11-28', 2], ['2026-11-29', 0], ['2026-11-30', 1], ['2026-12-01', 0], ['2026-12-02', 1]
    ])
    assert.deepEqual([byDay.total, byDay.other], [6, 0])
  })

  it('counts by day with the other filters', async () => {
    const range = { from: '2026-11-27T00:00:00Z', to: '2026-11-29T00:00:00Z' }
    assert.deepEqual((await events.countEvents({ ...range, user: ['anna'] }, 'day', { size: 10, ...range })).buckets, [{ key: '2026-11-27', count: 2 }, { key: '2026-11-28', count: 1 }])
  })
})

describe('SQLite event store: statistics sites', () => {
  let store: SqliteStore
  let events: SqliteEventStore

  before(() => {
    store = openStore('stats')
    // The documents of the Elasticsearch statistics test, and names with LIKE's special characters.
    indexStats(store, [
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-26T00:00:00Z', hits: 90, visitors: 9, pageviews: 40 }),
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 120, visitors: 12, pageviews: 60 }),
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-28T00:00:00Z', hits: 150, visitors: 15, pageviews: 70, partial: true }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T09:00:00Z', hits: 40, visitors: 4 }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T08:00:00Z', hits: 30, visitors: 3 }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T11:00:00Z', hits: 50, visitors: 5 }),
      statsDoc({ site: 'blog.a.example', granularity: 'hour', start: '2026-11-28T10:00:00Z', hits: 3, visitors: 1 }),
      statsDoc({ site: 'shop.b.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 777_777, visitors: 7_777 }),
      statsDoc({ site: 'a.example.b.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 5 }),
      statsDoc({ site: 'x_a.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 6 }),
      statsDoc({ site: 'odd%.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 7 })
    ])
    events = new SqliteEventStore(store.db)
  })
  after(() => { store.close() })

  const names = async (scope: Parameters<SqliteEventStore['listSites']>[0], limit = 100): Promise<string[]> => (await events.listSites(scope, limit)).sites.map(s => s.site)

  it('lists exact names and suffixes case-insensitively, by name, with the newest day document', async () => {
    const listed = await events.listSites({ all: false, exact: ['SHOP.A.EXAMPLE'], suffixes: ['.A.Example'] }, 100)
    assert.deepEqual(listed, {
      truncated: false,
      sites: [
        { site: 'blog.a.example' },
        { site: 'shop.a.example', lastDay: { start: '2026-11-28T00:00:00.000Z', partial: true, hits: 150, pageviews: 70, visits: 22, visitors: 15 } }
      ]
    })
    assert.deepEqual(await names({ all: false, exact: ['Shop.B.Example', 'a.example.b.example'], suffixes: [] }), ['a.example.b.example', 'shop.b.example'])
  })

  it('matches a suffix at the end of the name only', async () => {
    assert.deepEqual(await names({ all: false, exact: [], suffixes: ['.b.example'] }), ['a.example.b.example', 'shop.b.example'])
    assert.deepEqual(await names({ all: false, exact: [], suffixes: ['.a'] }), [])
  })

  it('takes % and _ in a suffix literally, not as LIKE wildcards', async () => {
    assert.deepEqual(await names({ all: false, exact: [], suffixes: ['_a.example'] }), ['x_a.example'])
    assert.deepEqual(await names({ all: false, exact: [], suffixes: ['%.example'] }), ['odd%.example'])
    assert.deepEqual(await names({ all: false, exact: ['%.a.example', 'shop_a.example'], suffixes: [] }), [])
  })

  it('lists every site for all, none for an empty scope, and at most limit with truncated', async () => {
    const every = ['a.example.b.example', 'blog.a.example', 'odd%.example', 'shop.a.example', 'shop.b.example', 'x_a.example']
    assert.deepEqual(await names({ all: true }), every)
    assert.deepEqual(await events.listSites({ all: false, exact: [], suffixes: [] }, 100), { sites: [], truncated: false })
    const two = await events.listSites({ all: true }, 2)
    assert.deepEqual([two.sites.map(s => s.site), two.truncated], [every.slice(0, 2), true])
    assert.equal((await events.listSites({ all: true }, 6)).truncated, false)
  })

  it('keeps names that differ only in case apart and lists them in byte order, as Elasticsearch\'s terms aggregation does', async () => {
    const cased = openStore('stats-case')
    try {
      indexStats(cased, [
        statsDoc({ site: 'shop.c.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 1 }),
        statsDoc({ site: 'Shop.c.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 2 }),
        statsDoc({ site: 'blog.c.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 3 })
      ])
      const listed = await new SqliteEventStore(cased.db).listSites({ all: false, exact: ['SHOP.C.EXAMPLE'], suffixes: ['.c.example'] }, 100)
      assert.deepEqual(listed.sites.map(x => [x.site, x.lastDay?.hits]), [['Shop.c.example', 2], ['blog.c.example', 3], ['shop.c.example', 1]])
      const two = await new SqliteEventStore(cased.db).listSites({ all: true }, 2)
      assert.deepEqual([two.sites.map(x => x.site), two.truncated], [['Shop.c.example', 'blog.c.example'], true])
      // Each step of the skip scan is one index seek, however many documents a site has.
      const plan = (cased.db.prepare('EXPLAIN QUERY PLAN SELECT t.site FROM stats t WHERE t.site > ? ORDER BY t.site LIMIT 1').all('a') as Array<{ detail: string }>).map(r => r.detail)
      assert.deepEqual(plan, ['SEARCH t USING COVERING INDEX stats_site_name (site>?)'])
    } finally {
      cased.close()
    }
  })

  it('returns a site\'s documents of one granularity in [from, to), oldest first, at most limit', async () => {
    const day = await events.siteStats('shop.a.example', { granularity: 'day', from: '2026-11-26T00:00:00Z', to: '2026-11-29T00:00:00Z', limit: 10 })
    assert.deepEqual(day.map(d => [d['@timestamp'], d.hits, d.partial]), [
      ['2026-11-26T00:00:00.000Z', 90, false], ['2026-11-27T00:00:00.000Z', 120, false], ['2026-11-28T00:00:00.000Z', 150, true]
    ])
    assert.equal(day[0]?.top.pages.length, 0)
    const shorter = await events.siteStats('shop.a.example', { granularity: 'day', from: '2026-11-26T00:00:00Z', to: '2026-11-28T00:00:00Z', limit: 10 })
    assert.equal(shorter.length, 2)
    const hours = await events.siteStats('shop.a.example', { granularity: 'hour', from: '2026-11-28T08:00:00Z', to: '2026-11-28T11:00:00Z', limit: 10 })
    assert.deepEqual(hours.map(d => [d['@timestamp'], d.hits]), [['2026-11-28T08:00:00.000Z', 30], ['2026-11-28T09:00:00.000Z', 40]])
    const limited = await events.siteStats('shop.a.example', { granularity: 'hour', from: '2026-11-28T00:00:00Z', to: '2026-11-29T00:00:00Z', limit: 2 })
    assert.deepEqual(limited.map(d => d.hits), [30, 40])
  })

  it('matches the site of siteStats exactly, like a term query', async () => {
    assert.deepEqual(await events.siteStats('SHOP.A.EXAMPLE', { granularity: 'day', from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z', limit: 10 }), [])
    assert.deepEqual(await events.siteStats('%.a.example', { granularity: 'day', from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z', limit: 10 }), [])
  })
})

describe('SQLite seal source (sqliteSeals)', () => {
  let store: SqliteStore
  const key = generateSealKey()
  const anna = Array.from({ length: 5 }, (_, i) => auditEvent({ at: `2026-11-29T08:00:0${i}Z`, action: 'ssh_login', user: i % 2 === 0 ? 'anna' : 'bob', host: 'web01' }))
  const unsealed = auditEvent({ at: '2026-11-29T09:00:00Z', action: 'ssh_login', user: 'anna', host: 'web01' })
  let checkpoints: SealCheckpoint[]

  before(async () => {
    store = openStore('seals')
    const { leaves } = indexEvents(store, anna)
    // Trees of two leaves: checkpoints 0, 1 and 2 (the last with one leaf).
    checkpoints = chainCheckpoints(planTrees(leaves, 2), null, loadSealKey({ sliceMs: 1000, maxLeaves: 2, privateKey: key.privatePem }).key, new Date('2026-11-29T08:01:00Z'))
    const seals = new SqliteSealStore(store)
    for (const cp of checkpoints) assert.equal(await seals.create(cp), true)
    indexEvents(store, [unsealed])
  })
  after(() => { store.close() })

  it('returns the whole checkpoints holding any of the ids, each once', async () => {
    const [c0, , c2] = checkpoints as [SealCheckpoint, SealCheckpoint, SealCheckpoint]
    const got = await sqliteSeals(store.db).checkpointsHolding([...c0.ids, c2.ids[0] as string, unsealed.event.id, 'unknown-id'])
    assert.deepEqual(got.sort((a, b) => a.seq - b.seq), [c0, c2])
    assert.deepEqual(await sqliteSeals(store.db).checkpointsHolding([]), [])
  })

  it('returns the chain between two seqs in order, without ids, hashes and timestamps', async () => {
    const chain = await sqliteSeals(store.db).chain(1, 2)
    assert.deepEqual(chain, checkpoints.slice(1).map(({ ids: _i, hashes: _h, timestamps: _t, ...rest }) => rest))
  })

  it('backs an evidence export that verifies against the seal key', async () => {
    const { bundle, manifest } = await runExport(new SqliteEventStore(store.db), sqliteSeals(store.db), { user: ['anna'] },
      { id: 'exp-1', caseId: 'INC-1', reason: 'review', requester: 'auditor', query: { user: ['anna'] }, created: '2026-11-29T10:00:00Z' },
      { maxEvents: 100, publicKeyPem: key.publicPem, pageSize: 2 })
    assert.deepEqual(manifest.counts, { events: 3, checkpoints: 3, unsealed_skipped: 1 })
    const verified = verifyBundle(bundle, createPublicKey(key.publicPem))
    assert.deepEqual(verified.problems, [])
    assert.equal(verified.ok, true)
  })
})
