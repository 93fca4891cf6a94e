import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainCheckpoints, planTrees } from '../../../../indexer/elasticsearch/seal.ts'
import { decodeMessage } from '../../../../indexer/elasticsearch/transform.ts'
import { SqliteSealStore } from '../../../../indexer/sqlite/seal-store.ts'
import { SqliteStore } from '../../../../indexer/sqlite/store.ts'
import { isAuditError } from '../../../../lib/errors.ts'
import { checkpointHash, checkpointStatementHash, type SealCheckpoint } from '../../../../lib/seal.ts'
import { sshLogin } from '../../../helpers/audit-events.ts'

describe('indexer/sqlite: seal store', () => {
  let dir: string
  let file: string
  let store: SqliteStore
  const { privateKey } = generateKeyPairSync('ed25519')

  /** Checkpoints sealing `n` indexed events, one tree per `perTree`, chained after `head`. */
  function checkpoints (n: number, perTree: number, head: SealCheckpoint | null = null): SealCheckpoint[] {
    const ops = Array.from({ length: n }, (_, i) => {
      const d = decodeMessage(Buffer.from(JSON.stringify(sshLogin(i + (head === null ? 0 : 1000)))), { topic: 't', partition: 0, offset: String(i) }, 'x', new Date('2026-11-28T12:00:00Z'))
      if (!('op' in d)) throw new Error('not indexable')
      return d.op
    })
    const { leaves } = store.indexEvents(ops)
    const chainHead = head === null ? null : { seq: head.seq, hash: checkpointHash(head), statement: checkpointStatementHash(head) }
    return chainCheckpoints(planTrees(leaves, perTree), chainHead, privateKey, new Date('2026-11-28T12:00:10Z'))
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sqlite-seal-'))
    file = join(dir, 'auditline.db')
    store = SqliteStore.open(file, { indexPrefix: 'x' })
  })
  afterEach(async () => {
    if (store.db.open) store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('is named like the Elasticsearch seals index and starts with an empty chain', async () => {
    const seals = new SqliteSealStore(store)
    assert.equal(seals.name, 'x_seals')
    await seals.ensure()
    assert.equal(await seals.readHead(), null)
  })

  it('stores each checkpoint under its seq with its index, time range and ids, and reads the newest as head', async () => {
    const seals = new SqliteSealStore(store)
    const [cp0, cp1] = checkpoints(5, 3)
    assert.ok(cp0 !== undefined && cp1 !== undefined)
    assert.equal(await seals.create(cp0), true)
    assert.equal(await seals.create(cp1), true)
    assert.deepEqual(await seals.readHead(), { docId: 'cp-000000000001', cp: cp1 })
    assert.deepEqual(store.db.prepare('SELECT seq, idx, from_ts, to_ts, doc FROM seals ORDER BY seq').all(), [
      { seq: 0, idx: 'x-ssh-2026.11.28', from_ts: '2026-11-28T00:00:00.000Z', to_ts: '2026-11-28T00:00:02.000Z', doc: JSON.stringify(cp0) },
      { seq: 1, idx: 'x-ssh-2026.11.28', from_ts: '2026-11-28T00:00:03.000Z', to_ts: '2026-11-28T00:00:04.000Z', doc: JSON.stringify(cp1) }
    ])
    const ids = store.db.prepare('SELECT id, seq FROM seal_ids ORDER BY seq, id').all()
    assert.deepEqual(ids, [...cp0.ids.map(id => ({ id, seq: 0 })), ...cp1.ids.map(id => ({ id, seq: 1 }))].sort((a, b) => a.seq - b.seq || (a.id < b.id ? -1 : 1)))
  })

  it('never overwrites a seq: a second writer of the same seq gets false and changes nothing', async () => {
    const seals = new SqliteSealStore(store)
    const [mine] = checkpoints(2, 10)
    assert.ok(mine !== undefined)
    assert.equal(await seals.create(mine), true)
    // Another indexer chained other events onto the same (empty) head: the same seq 0.
    const [theirs] = chainCheckpoints(planTrees([{ index: 'x-ssh-2026.11.28', id: 'f'.repeat(32), hash: 'a'.repeat(64), '@timestamp': '2026-11-28T01:00:00Z' }], 10), null, privateKey, new Date())
    assert.ok(theirs !== undefined && theirs.seq === 0)
    assert.equal(await seals.create(theirs), false)
    assert.deepEqual(await seals.readHead(), { docId: 'cp-000000000000', cp: mine })
    assert.deepEqual(store.db.prepare('SELECT id FROM seal_ids ORDER BY id').pluck().all(), [...mine.ids].sort())
  })

  it('keeps the chain across close and reopen, and chains on from its head', async () => {
    const [cp0] = checkpoints(2, 10)
    assert.ok(cp0 !== undefined)
    assert.equal(await new SqliteSealStore(store).create(cp0), true)
    store.close()
    store = SqliteStore.open(file, { indexPrefix: 'x' })
    const seals = new SqliteSealStore(store)
    const head = await seals.readHead()
    assert.deepEqual(head, { docId: 'cp-000000000000', cp: cp0 })
    const [cp1] = checkpoints(1, 10, head?.cp ?? null)
    assert.ok(cp1 !== undefined)
    assert.equal(cp1.seq, 1)
    assert.equal(cp1.prev, checkpointHash(cp0))
    assert.equal(await seals.create(cp1), true)
    assert.equal((await seals.readHead())?.docId, 'cp-000000000001')
  })

  it('refuses to chain onto a head row that is not a checkpoint\'s JSON', async () => {
    const seals = new SqliteSealStore(store)
    store.db.prepare("INSERT INTO seals (seq, idx, from_ts, to_ts, doc) VALUES (7, 'x-ssh-2026.11.28', 'a', 'b', 'not json')").run()
    await assert.rejects(seals.readHead(), (err: unknown) => isAuditError(err, 'AUD_ERR_INDEX_SEAL_WRITE') && err.message.includes('7'))
  })
})
