import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { chainCheckpoints, planTrees } from '../../../../indexer/elasticsearch/seal.ts'
import { decodeMessage } from '../../../../indexer/elasticsearch/transform.ts'
import { ACTION_DONE, ACTION_INTENT } from '../../../../indexer/retention/record.ts'
import { run, validate } from '../../../../indexer/retention/run.ts'
import { sqliteRetentionStore } from '../../../../indexer/sqlite/retention-store.ts'
import { SqliteSealStore } from '../../../../indexer/sqlite/seal-store.ts'
import { SqliteStore, type IndexOp } from '../../../../indexer/sqlite/store.ts'
import type { AuditEvent } from '../../../../lib/ecs.ts'
import { createLogger } from '../../../../lib/log.ts'
import { sshLogin } from '../../../helpers/audit-events.ts'
import { statsDoc } from '../../../helpers/stats-docs.ts'

function opsOf (events: readonly AuditEvent[], now = new Date('2026-12-01T00:00:00Z')): Array<IndexOp<AuditEvent>> {
  return events.map((e, i) => {
    const d = decodeMessage(Buffer.from(JSON.stringify(e)), { topic: 't', partition: 0, offset: String(i) }, 'x', now)
    if (!('op' in d)) throw new Error('not indexable')
    return d.op
  })
}

const OLD = 'x-ssh-2026.11.28'
const NEW = 'x-ssh-2026.11.29'
const STATS = 'x-stats-2026.11.28'

describe('indexer/sqlite: retention store', () => {
  let dir: string
  let store: SqliteStore
  const count = (sql: string, ...params: unknown[]): number => store.db.prepare(sql).pluck().get(...params) as number

  /** Two days of ssh events (3 + 2), one statistics index and a seal over all events. */
  async function fill (): Promise<void> {
    const { leaves } = store.indexEvents(opsOf([
      sshLogin(0), sshLogin(1), sshLogin(2),
      sshLogin(3, { start: '2026-11-29T00:00:00Z' }), sshLogin(4, { start: '2026-11-29T00:00:00Z' })
    ]))
    const s = statsDoc({ site: 'shop.example.org', granularity: 'day', start: '2026-11-28T00:00:00Z' })
    store.indexStats([{ index: STATS, id: s.id, doc: s }])
    const seals = new SqliteSealStore(store)
    for (const cp of chainCheckpoints(planTrees(leaves, 100), null, generateKeyPairSync('ed25519').privateKey, new Date())) assert.ok(await seals.create(cp))
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sqlite-retention-'))
    store = SqliteStore.open(join(dir, 'auditline.db'), { indexPrefix: 'x' })
  })
  afterEach(async () => {
    store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('lists the indices an Elasticsearch-style pattern matches, open, with their uuids', async () => {
    await fill()
    const rs = sqliteRetentionStore(store)
    const uuid = (name: string): string => store.db.prepare('SELECT uuid FROM indices WHERE name = ?').pluck().get(name) as string
    assert.deepEqual(await rs.list('x-*'), [OLD, NEW, STATS].sort().map(index => ({ index, uuid: uuid(index), status: 'open' })))
    assert.deepEqual((await rs.list('x-*,-x-stats-*')).map(i => i.index), [OLD, NEW])
    assert.deepEqual((await rs.list('x-ssh-2026.11.2?')).map(i => i.index), [])
    assert.deepEqual((await rs.list('y-*')).map(i => i.index), [])
    assert.equal(await rs.uuidOf(OLD), uuid(OLD))
    assert.equal(await rs.uuidOf('x-ssh-2020.01.01'), undefined)
  })

  it('counts the events or statistics documents of an index', async () => {
    await fill()
    const rs = sqliteRetentionStore(store)
    assert.equal(await rs.count(OLD), 3)
    assert.equal(await rs.count(NEW), 2)
    assert.equal(await rs.count(STATS), 1)
    assert.equal(await rs.count('x-ssh-2020.01.01'), 0)
  })

  it('deletes exactly one index\'s events, categories, text and statistics, and never a seal', async () => {
    await fill()
    const rs = sqliteRetentionStore(store)
    const seals = store.db.prepare('SELECT * FROM seals').all()
    const sealIds = count('SELECT count(*) FROM seal_ids')
    const newSeqs = store.db.prepare('SELECT seq FROM events WHERE idx = ? ORDER BY seq').pluck().all(NEW)
    assert.equal(await rs.delete(OLD), 'deleted')
    assert.deepEqual(store.db.prepare('SELECT DISTINCT idx FROM events').pluck().all(), [NEW])
    assert.deepEqual(store.db.prepare('SELECT DISTINCT seq FROM event_categories ORDER BY seq').pluck().all(), newSeqs)
    assert.deepEqual(store.db.prepare('SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid').pluck().all('ssh_login'), newSeqs)
    assert.deepEqual(store.db.prepare('SELECT name FROM indices ORDER BY name').pluck().all(), [NEW, STATS])
    assert.equal(await rs.delete(STATS), 'deleted')
    assert.equal(count('SELECT count(*) FROM stats'), 0)
    assert.deepEqual(store.db.prepare('SELECT * FROM seals').all(), seals)
    assert.equal(count('SELECT count(*) FROM seal_ids'), sealIds)
    assert.equal(await rs.delete(OLD), 'not_found')
    assert.equal(await rs.uuidOf(OLD), undefined)
  })

  it('gives a late event in a deleted index a new index with a new uuid', async () => {
    await fill()
    const rs = sqliteRetentionStore(store)
    const before = await rs.uuidOf(OLD)
    await rs.delete(OLD)
    store.indexEvents(opsOf([sshLogin(0)]))
    const after = await rs.uuidOf(OLD)
    assert.ok(after !== undefined && after !== before)
    assert.equal(await rs.count(OLD), 1)
  })

  it('lets a retention run delete the expired index and index its records in the same store', async () => {
    await fill()
    const quiet = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
    const now = new Date('2027-02-27T12:00:00Z') // 90 days after the end of 2026-11-28, not of 2026-11-29
    const report = await run(validate({ classes: { ssh: 90, stats: 400 } }), {
      store: sqliteRetentionStore(store),
      publish: async events => { store.indexEvents(opsOf(events, now)) },
      indexPrefix: 'x',
      host: 'indexer-1',
      stateDir: join(dir, 'retention'),
      now: () => now,
      log: quiet,
      metrics: new Registry()
    })
    assert.deepEqual(report.expired.map(e => [e.index, e.documents, e.result]), [[OLD, 3, 'deleted']])
    assert.equal(await sqliteRetentionStore(store).count(OLD), 0)
    const records = store.db.prepare("SELECT idx, action FROM events WHERE stream = 'indexer-1/retention' ORDER BY sequence").all()
    assert.deepEqual(records, [{ idx: 'x-api-2027.02.27', action: ACTION_INTENT }, { idx: 'x-api-2027.02.27', action: ACTION_DONE }])
  })
})
