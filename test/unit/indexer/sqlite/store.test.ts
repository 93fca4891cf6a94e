import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { decodeMessage } from '../../../../indexer/elasticsearch/transform.ts'
import { SqliteStore, ftsText, type IndexOp } from '../../../../indexer/sqlite/store.ts'
import { cidrRange, ipBytes } from '../../../../indexer/sqlite/ip.ts'
import { SCHEMA_VERSION } from '../../../../indexer/sqlite/schema.ts'
import { assertEvent, type AuditEvent } from '../../../../lib/ecs.ts'
import { isAuditError } from '../../../../lib/errors.ts'
import type { DeadLetter } from '../../../../lib/deadletter.ts'
import { resealed, sshLogin } from '../../../helpers/audit-events.ts'
import { statsDoc } from '../../../helpers/stats-docs.ts'

const INGESTED = new Date('2026-11-28T12:00:00Z')

/** The indexer's own decoding (hash check, `event.ingested`, index name): the ops the embedded indexer writes. */
function opsOf (events: readonly AuditEvent[]): Array<IndexOp<AuditEvent>> {
  return events.map((e, i) => {
    const d = decodeMessage(Buffer.from(JSON.stringify(e)), { topic: 'audit.test.v1', partition: 0, offset: String(i) }, 'x', INGESTED)
    if (!('op' in d)) throw new Error(`not indexable: ${JSON.stringify(d.dead)}`)
    return d.op
  })
}

function checked (e: AuditEvent): AuditEvent {
  assertEvent(e)
  return e
}

/** One event of each kind the filter columns are made for. */
function mixed (): Record<'v4' | 'v6' | 'panel' | 'ftp' | 'db', AuditEvent> {
  return {
    v4: sshLogin(1),
    v6: checked(resealed(sshLogin(2), e => { e.source = { ip: '2001:db8::42', port: 52000 }; e.related = { ...e.related, ip: ['2001:db8::42'] } })),
    panel: checked(resealed(sshLogin(3), e => {
      delete e.source; delete e.ssh; delete e.process
      e.auditline.class = 'panel'
      e.event = { ...e.event, category: ['configuration', 'web'], type: ['change'], action: 'dns_record_update', reason: 'MX record changed for mail migration' }
      e.panel = { actor_kind: 'staff', actor_id: 'staff-17', customer: 'c-1042', object_type: 'dns_zone', object_id: 'shop.example.org', ticket_id: 'OPS-2026-0042' }
    })),
    ftp: checked(resealed(sshLogin(4), e => {
      delete e.ssh; delete e.source
      e.auditline.class = 'ftp'
      e.event = { ...e.event, category: ['file'], type: ['creation'], action: 'ftp_upload' }
      e.file = { path: '/srv/www/shop/index.php', size: 1812 }
      e.ftp = { server: 'vsftpd', session_id: '4711', direction: 'upload', bytes: 1812 }
    })),
    db: checked(resealed(sshLogin(5), e => {
      delete e.ssh; delete e.source
      e.auditline.class = 'db'
      e.event = { ...e.event, category: ['database'], type: ['deletion'], action: 'db_drop_database', outcome: 'success' }
      e.db = { system: 'mariadb', name: 'shop_old', statement: 'DROP DATABASE shop_old', operation: 'drop', connection_id: 88 }
    }))
  }
}

interface Row { seq: number, id: string, idx: string, ts: number, class: string, action: string, outcome: string | null, user_name: string | null, host_name: string | null, source_ip: Buffer | null, ticket: string | null, customer: string | null, session: string | null, stream: string, sequence: number, doc: string }

describe('indexer/sqlite: store (write side)', () => {
  let dir: string
  let file: string
  let store: SqliteStore
  const row = (id: string): Row => store.db.prepare('SELECT * FROM events WHERE id = ?').get(id) as Row
  const count = (sql: string, ...params: unknown[]): number => store.db.prepare(sql).pluck().get(...params) as number

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sqlite-'))
    file = join(dir, 'data', 'auditline.db')
    store = SqliteStore.open(file, { indexPrefix: 'x' })
  })
  afterEach(async () => {
    if (store.db.open) store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('creates the file readable by its owner only, in WAL mode with full fsync, at the current schema version', async () => {
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal')
    assert.equal(store.db.pragma('synchronous', { simple: true }), 2)
    assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION)
    store.indexEvents(opsOf([sshLogin(0)]))
    assert.equal((await stat(`${file}-wal`)).mode & 0o777, 0o600)
  })

  it('stores a replayed id once: no second row, category or text row, and no second leaf', () => {
    const first = opsOf([sshLogin(0), sshLogin(1), sshLogin(2)])
    const a = store.indexEvents(first)
    assert.deepEqual(a.leaves.map(l => l.id), first.map(o => o.id))
    assert.deepEqual(a.leaves[0], { index: 'x-ssh-2026.11.28', id: first[0]?.id, hash: first[0]?.doc.event.hash, '@timestamp': '2026-11-28T00:00:00.000Z' })
    assert.equal(a.lastSeq, 3)
    // A replay of the whole batch plus one new event: only the new one is written and sealed.
    const b = store.indexEvents(opsOf([sshLogin(0), sshLogin(1), sshLogin(2), sshLogin(3)]))
    assert.deepEqual(b.leaves.map(l => l.id), [sshLogin(3).event.id])
    assert.equal(b.lastSeq, row(sshLogin(3).event.id).seq)
    const c = store.indexEvents(opsOf([sshLogin(1)]))
    assert.deepEqual(c.leaves, [])
    assert.ok(c.lastSeq >= b.lastSeq)
    assert.equal(store.countEvents(), 4)
    assert.equal(count('SELECT count(*) FROM event_categories'), 8)
    assert.equal(count('SELECT count(*) FROM events_fts WHERE events_fts MATCH ?', 'ssh_login'), 4)
  })

  it('derives the filter columns from the document as indexed', () => {
    const ev = mixed()
    const ops = opsOf(Object.values(ev))
    store.indexEvents(ops)
    const v4 = row(ev.v4.event.id)
    assert.deepEqual({ ...v4, source_ip: v4.source_ip?.toString('hex') }, {
      seq: 1,
      id: ev.v4.event.id,
      idx: 'x-ssh-2026.11.28',
      ts: Date.parse('2026-11-28T00:00:01Z'),
      class: 'ssh',
      action: 'ssh_login',
      outcome: 'success',
      user_name: 'deploy-1',
      host_name: 'indexer-test',
      source_ip: '00000000000000000000ffffc6336401',
      ticket: null,
      customer: null,
      session: null,
      stream: 'indexer-test/auth',
      sequence: 1,
      doc: JSON.stringify(ops[0]?.doc)
    })
    assert.equal(JSON.parse(v4.doc).event.ingested, INGESTED.toISOString())
    assert.equal(row(ev.v6.event.id).source_ip?.toString('hex'), '20010db8000000000000000000000042')
    assert.deepEqual(row(ev.v6.event.id).source_ip, ipBytes('2001:db8::42'))
    assert.deepEqual(v4.source_ip, ipBytes('::ffff:198.51.100.1'))
    const panel = row(ev.panel.event.id)
    assert.deepEqual([panel.idx, panel.class, panel.ticket, panel.customer, panel.source_ip, panel.session], ['x-panel-2026.11.28', 'panel', 'OPS-2026-0042', 'c-1042', null, null])
    assert.equal(row(ev.ftp.event.id).session, '4711')
    assert.equal(row(ev.db.event.id).session, '88')
  })

  it('finds exactly the events whose source_ip lies in a CIDR block', () => {
    const ev = mixed()
    store.indexEvents(opsOf([...Object.values(ev), resealed(sshLogin(7), e => { e.source = { ip: '::ffff:198.51.100.200' } })]))
    const within = (cidr: string): string[] => {
      const r = cidrRange(cidr)
      assert.ok(r !== undefined)
      return store.db.prepare('SELECT user_name FROM events WHERE source_ip BETWEEN ? AND ? ORDER BY seq').pluck().all(r.lo, r.hi) as string[]
    }
    assert.deepEqual(within('198.51.100.0/24'), ['deploy-1', 'deploy-7'])
    assert.deepEqual(within('198.51.100.1'), ['deploy-1'])
    assert.deepEqual(within('198.51.100.128/25'), ['deploy-7'])
    assert.deepEqual(within('2001:db8::/32'), ['deploy-2'])
    assert.deepEqual(within('2001:db8::42/128'), ['deploy-2'])
    assert.deepEqual(within('::ffff:0:0/96'), ['deploy-1', 'deploy-7'])
    assert.deepEqual(within('203.0.113.0/24'), [])
    assert.deepEqual(within('2001:db9::/32'), [])
  })

  it('stores no source_ip for an address it cannot parse', () => {
    const e = checked(resealed(sshLogin(1), x => { x.source = { ip: 'unknown' } }))
    store.indexEvents(opsOf([e]))
    assert.equal(row(e.event.id).source_ip, null)
  })

  it('writes a category row per event.category value and the free text under the event\'s seq', () => {
    const ev = mixed()
    store.indexEvents(opsOf(Object.values(ev)))
    const cats = store.db.prepare('SELECT category, seq FROM event_categories ORDER BY seq, category').all()
    assert.deepEqual(cats, [
      { category: 'authentication', seq: 1 }, { category: 'session', seq: 1 },
      { category: 'authentication', seq: 2 }, { category: 'session', seq: 2 },
      { category: 'configuration', seq: 3 }, { category: 'web', seq: 3 },
      { category: 'file', seq: 4 },
      { category: 'database', seq: 5 }
    ])
    assert.equal(ftsText(ev.panel), 'MX record changed for mail migration deploy-3 indexer-test dns_record_update shop.example.org OPS-2026-0042')
    assert.equal(ftsText(ev.db), 'DROP DATABASE shop_old deploy-5 indexer-test db_drop_database')
    assert.equal(ftsText(ev.ftp), 'deploy-4 indexer-test ftp_upload /srv/www/shop/index.php')
    const match = (q: string): number[] => store.db.prepare('SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid').pluck().all(q) as number[]
    assert.deepEqual(match('shop_old'), [5])
    assert.deepEqual(match('"OPS-2026-0042"'), [3])
    assert.deepEqual(match('migration'), [3])
    assert.deepEqual(match('"index.php"'), [4])
    assert.deepEqual(match('"indexer-test"'), [1, 2, 3, 4, 5])
    assert.deepEqual(match('"198.51.100.1"'), [])
  })

  it('records an index on its first insert, with its kind, and keeps its uuid', () => {
    store.indexEvents(opsOf([sshLogin(0)]))
    const before = store.db.prepare('SELECT name, uuid, kind, created FROM indices').all() as Array<{ name: string, uuid: string, kind: string, created: string }>
    assert.equal(before.length, 1)
    assert.equal(before[0]?.name, 'x-ssh-2026.11.28')
    assert.equal(before[0]?.kind, 'events')
    assert.match(before[0]?.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.ok(!Number.isNaN(Date.parse(before[0]?.created ?? '')))
    store.indexEvents(opsOf([sshLogin(1), sshLogin(2, { start: '2026-11-29T00:00:00Z' })]))
    const after = store.db.prepare('SELECT name, uuid, kind FROM indices ORDER BY name').all()
    assert.deepEqual(after, [
      { name: 'x-ssh-2026.11.28', uuid: before[0]?.uuid, kind: 'events' },
      { name: 'x-ssh-2026.11.29', uuid: (after[1] as { uuid: string }).uuid, kind: 'events' }
    ])
    assert.notEqual((after[1] as { uuid: string }).uuid, before[0]?.uuid)
  })

  it('refuses an event whose @timestamp is no valid time, before writing anything of its batch', () => {
    const bad = checked(resealed(sshLogin(1), e => { e['@timestamp'] = '2026-11-28T23:60:00Z' }))
    // The indexer dead-letters such an event (decodeMessage); the store refuses it on its own too.
    assert.throws(() => store.indexEvents([...opsOf([sshLogin(0)]), { index: 'x-ssh-2026.11.28', id: bad.event.id, doc: bad }]), (err: unknown) => isAuditError(err, 'AUD_ERR_EVENT_INVALID') && err.meta.id === bad.event.id)
    assert.equal(store.countEvents(), 0)
    assert.equal(count('SELECT count(*) FROM indices'), 0)
  })

  it('refuses a statistics document whose period starts at no valid time, before writing its batch', () => {
    const good = statsDoc({ site: 'shop.example.org', granularity: 'hour', start: '2026-11-28T10:00:00Z' })
    const bad = { ...good, id: 'b'.repeat(32), period: { ...good.period, start: '2026-11-28T10:60:00.000Z' } }
    assert.throws(() => store.indexStats([{ index: 'x-stats-2026.11.28', id: good.id, doc: good }, { index: 'x-stats-2026.11.28', id: bad.id, doc: bad }]),
      (err: unknown) => isAuditError(err, 'AUD_ERR_EVENT_INVALID') && err.message.includes('statistics document') && err.meta.id === bad.id)
    assert.equal(count('SELECT count(*) FROM stats'), 0)
  })

  it('overwrites a statistics document re-emitted under the same id', () => {
    const partial = statsDoc({ site: 'shop.example.org', granularity: 'hour', start: '2026-11-28T10:00:00Z', hits: 40, partial: true })
    const final = statsDoc({ site: 'shop.example.org', granularity: 'hour', start: '2026-11-28T10:00:00Z', hits: 120 })
    const other = statsDoc({ site: 'blog.example.org', granularity: 'day', start: '2026-11-28T00:00:00Z' })
    const idx = 'x-stats-2026.11.28'
    store.indexStats([{ index: idx, id: partial.id, doc: partial }, { index: idx, id: other.id, doc: other }])
    store.indexStats([{ index: idx, id: final.id, doc: final }])
    const rows = store.db.prepare('SELECT id, idx, site, granularity, ts, doc FROM stats ORDER BY site').all()
    assert.deepEqual(rows, [
      { id: other.id, idx, site: 'blog.example.org', granularity: 'day', ts: Date.parse('2026-11-28T00:00:00Z'), doc: JSON.stringify(other) },
      { id: final.id, idx, site: 'shop.example.org', granularity: 'hour', ts: Date.parse('2026-11-28T10:00:00Z'), doc: JSON.stringify(final) }
    ])
    assert.deepEqual(store.db.prepare('SELECT name, kind FROM indices').all(), [{ name: idx, kind: 'stats' }])
  })

  it('keeps dead letters with their stream and sequence', () => {
    const d: DeadLetter[] = [
      { '@timestamp': '2026-11-28T00:00:09.000Z', stage: 'ingest', code: 'AUD_ERR_INGEST_PARSE', reason: 'no timestamp', source: { stream: 'web01/auth', path: '/var/log/auth.log', offset: 4096 }, sequence: 17, original: 'garbage' },
      { '@timestamp': '2026-11-28T00:00:10.000Z', stage: 'index', code: 'AUD_ERR_INDEX_DECODE', reason: 'not JSON', source: { topic: 'audit.ssh.v1', partition: 0, kafka_offset: '12' } }
    ]
    store.putDeadLetters(d)
    assert.equal(store.deadLetterCount(), 2)
    assert.deepEqual(store.db.prepare('SELECT ts, stage, code, stream, sequence, doc FROM deadletters ORDER BY n').all(), [
      { ts: '2026-11-28T00:00:09.000Z', stage: 'ingest', code: 'AUD_ERR_INGEST_PARSE', stream: 'web01/auth', sequence: 17, doc: JSON.stringify(d[0]) },
      { ts: '2026-11-28T00:00:10.000Z', stage: 'index', code: 'AUD_ERR_INDEX_DECODE', stream: null, sequence: null, doc: JSON.stringify(d[1]) }
    ])
  })

  it('commits events and meta together in one transaction, or neither', () => {
    store.setMeta('indexer.position', '0')
    store.setMeta('indexer.position', '3')
    assert.equal(store.getMeta('indexer.position'), '3')
    assert.equal(store.getMeta('nothing'), undefined)
    assert.throws(() => store.transaction(() => {
      store.indexEvents(opsOf([sshLogin(0)]))
      store.setMeta('indexer.position', '4')
      throw new Error('crash before commit')
    }), /crash before commit/)
    assert.equal(store.countEvents(), 0)
    assert.equal(store.getMeta('indexer.position'), '3')
    const r = store.transaction(() => {
      const out = store.indexEvents(opsOf([sshLogin(0)]))
      store.setMeta('indexer.position', '4')
      return out
    })
    assert.equal(r.leaves.length, 1)
    assert.equal(store.countEvents(), 1)
    assert.equal(store.getMeta('indexer.position'), '4')
  })

  const anon = (...ns: number[]): Array<{ id: string, value: string }> => ns.map(n => ({ id: `r${n}`, value: `{"n":${n}}` }))

  it('queues anonymized records in order, trims below a position and never reuses a seq', () => {
    assert.equal(store.appendAnon([]), 0)
    assert.equal(store.appendAnon(anon(1, 2, 3)), 3)
    assert.deepEqual(store.readAnon(1, 10), [{ seq: 2, value: '{"n":2}' }, { seq: 3, value: '{"n":3}' }])
    assert.deepEqual(store.readAnon(0, 1), [{ seq: 1, value: '{"n":1}' }])
    assert.equal(store.trimAnon(3), 2)
    assert.deepEqual(store.readAnon(0, 10).map(r => r.seq), [3])
    assert.equal(store.trimAnon(4), 1)
    assert.equal(store.appendAnon(anon(4)), 4)
    assert.equal(store.appendAnon([]), 4)
    assert.deepEqual(store.readAnon(0, 10), [{ seq: 4, value: '{"n":4}' }])
  })

  it('ignores an anonymized record whose id is queued already (a batch re-sent after a crash)', () => {
    store.appendAnon(anon(1, 2))
    store.appendAnon([{ id: 'r2', value: '{"n":2,"again":true}' }, ...anon(3)])
    assert.deepEqual(store.readAnon(0, 10).map(r => r.value), ['{"n":1}', '{"n":2}', '{"n":3}'])
  })

  it('gives the leaves of the events after a seq, in seq order, as indexEvents gave them', () => {
    const events = [sshLogin(5), sshLogin(1), sshLogin(3), sshLogin(2), sshLogin(4)]
    const { leaves } = store.indexEvents(opsOf(events))
    assert.deepEqual(store.unsealedLeaves(2, 2), { leaves: leaves.slice(2, 4), lastSeq: 4 })
    assert.deepEqual(store.unsealedLeaves(4, 10), { leaves: leaves.slice(4), lastSeq: 5 })
    assert.deepEqual(store.unsealedLeaves(5, 10), { leaves: [], lastSeq: 5 })
    assert.deepEqual(store.unsealedLeaves(0, 10).leaves, leaves)
  })

  it('seals no row whose document is not an event as it wrote it, but reads past it', () => {
    const { leaves } = store.indexEvents(opsOf([sshLogin(1), sshLogin(2), sshLogin(3)]))
    store.db.prepare('UPDATE events SET doc = ? WHERE seq = 1').run('{"truncated')
    store.db.prepare('UPDATE events SET doc = ? WHERE seq = 2').run('{"event":{}}')
    assert.deepEqual(store.unsealedLeaves(0, 2), { leaves: [], lastSeq: 2 })
    assert.deepEqual(store.unsealedLeaves(2, 2), { leaves: leaves.slice(2), lastSeq: 3 })
  })

  it('keeps everything across close and reopen, and still ignores replays after it', () => {
    const { leaves } = store.indexEvents(opsOf([sshLogin(0), sshLogin(1)]))
    const stats = statsDoc({ site: 'shop.example.org', granularity: 'day', start: '2026-11-28T00:00:00Z' })
    store.indexStats([{ index: 'x-stats-2026.11.28', id: stats.id, doc: stats }])
    store.setMeta('k', 'v')
    store.appendAnon([{ id: 'a', value: 'a' }])
    store.putDeadLetters([{ '@timestamp': '2026-11-28T00:00:09.000Z', stage: 'ingest', code: 'AUD_ERR_INGEST_PARSE', reason: 'x', source: { stream: 's' }, sequence: 1 }])
    const uuids = store.db.prepare('SELECT name, uuid FROM indices ORDER BY name').all()
    store.close()
    store = SqliteStore.open(file, { indexPrefix: 'x' })
    assert.equal(store.countEvents(), 2)
    assert.deepEqual(store.unsealedLeaves(0, 10).leaves, leaves)
    assert.equal(count('SELECT count(*) FROM stats'), 1)
    assert.equal(store.getMeta('k'), 'v')
    assert.deepEqual(store.readAnon(0, 10), [{ seq: 1, value: 'a' }])
    assert.equal(store.deadLetterCount(), 1)
    assert.deepEqual(store.db.prepare('SELECT name, uuid FROM indices ORDER BY name').all(), uuids)
    const again = store.indexEvents(opsOf([sshLogin(1), sshLogin(2)]))
    assert.deepEqual(again.leaves.map(l => l.id), [sshLogin(2).event.id])
    assert.ok(row(sshLogin(2).event.id).seq > 2)
    assert.equal(store.indexEvents([]).lastSeq, row(sshLogin(2).event.id).seq)
  })

  it('refuses a file written by a newer schema version, and leaves it as it was', () => {
    store.indexEvents(opsOf([sshLogin(0)]))
    store.close()
    const raw = new Database(file)
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    raw.close()
    assert.throws(() => SqliteStore.open(file, { indexPrefix: 'x' }), (err: unknown) =>
      isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && err.message.includes(file) && err.message.includes(`schema version ${SCHEMA_VERSION + 1}`))
    const after = new Database(file, { readonly: true })
    assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1)
    assert.equal(after.prepare('SELECT count(*) FROM events').pluck().get(), 1)
    after.close()
  })
})
