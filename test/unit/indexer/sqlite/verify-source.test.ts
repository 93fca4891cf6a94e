import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chainCheckpoints, planTrees, type SealLeaf } from '../../../../indexer/elasticsearch/seal.ts'
import { decodeMessage } from '../../../../indexer/elasticsearch/transform.ts'
import { deletionDone, type DeletionTarget } from '../../../../indexer/retention/record.ts'
import { SqliteSealStore } from '../../../../indexer/sqlite/seal-store.ts'
import { SqliteStore, type IndexOp } from '../../../../indexer/sqlite/store.ts'
import { SqliteVerifySource } from '../../../../indexer/sqlite/verify-source.ts'
import { verifyInMemory, type IndexedDoc, type StoredCheckpoint } from '../../../../indexer/verify.ts'
import type { AuditEvent } from '../../../../lib/ecs.ts'
import { indexMatcher } from '../../../../lib/index-pattern.ts'
import { checkpointHash, checkpointStatementHash, type SealCheckpoint } from '../../../../lib/seal.ts'
import { resealed, sshLogin } from '../../../helpers/audit-events.ts'
import { statsDoc } from '../../../helpers/stats-docs.ts'

const INGESTED = new Date('2026-11-30T12:00:00Z')
const DAY1 = 'x-ssh-2026.11.28'
const DAY2 = 'x-ssh-2026.11.29'

function opsOf (events: readonly AuditEvent[]): Array<IndexOp<AuditEvent>> {
  return events.map((e, i) => {
    const d = decodeMessage(Buffer.from(JSON.stringify(e)), { topic: 't', partition: 0, offset: String(i) }, 'x', INGESTED)
    if (!('op' in d)) throw new Error('not indexable')
    return d.op
  })
}

async function all<T> (pages: AsyncIterable<T[]>): Promise<T[][]> {
  const out: T[][] = []
  for await (const p of pages) out.push(p)
  return out
}

describe('indexer/sqlite: verify source', () => {
  let dir: string
  let store: SqliteStore
  let source: SqliteVerifySource
  const { privateKey } = generateKeyPairSync('ed25519')
  const publicKey = createPublicKey(privateKey)
  let head: SealCheckpoint | null

  /** Seals `leaves` (one tree per index and `perTree` leaves) onto the chain, as the indexer does. */
  async function seal (leaves: readonly SealLeaf[], perTree = 1000): Promise<SealCheckpoint[]> {
    const h = head === null ? null : { seq: head.seq, hash: checkpointHash(head), statement: checkpointStatementHash(head) }
    const cps = chainCheckpoints(planTrees(leaves, perTree), h, privateKey, new Date('2026-11-30T12:00:05Z'))
    const seals = new SqliteSealStore(store)
    for (const cp of cps) assert.ok(await seals.create(cp))
    head = cps[cps.length - 1] ?? head
    return cps
  }

  /** Everything the source gives, run through verify's own checks. */
  async function verifyAll (): Promise<ReturnType<typeof verifyInMemory>> {
    const checkpoints = (await all(source.checkpoints({}))).flat()
    const docs: IndexedDoc[] = []
    for (const index of await source.indices(indexMatcher('x-*,-x-stats-*'))) for (const page of await all(source.docs(index, {}))) docs.push(...page)
    return verifyInMemory({ checkpoints, docs, keys: [publicKey], sealsIndex: source.sealsName, now: new Date('2026-12-01T00:00:00Z'), graceMs: 60_000 })
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sqlite-verify-'))
    store = SqliteStore.open(join(dir, 'auditline.db'), { indexPrefix: 'x' })
    source = new SqliteVerifySource(store)
    head = null
  })
  afterEach(async () => {
    if (store.db.open) await source.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('reads a sealed deployment back so that verify finds it intact', async () => {
    const { leaves } = store.indexEvents(opsOf([...Array.from({ length: 5 }, (_, i) => sshLogin(i)), sshLogin(5, { start: '2026-11-29T00:00:00Z' })]))
    await seal(leaves, 3)
    assert.equal(source.sealsName, 'x_seals')
    const r = await verifyAll()
    assert.deepEqual(r.findings, [])
    assert.equal(r.verified, 6)
  })

  it('hands changed, deleted, forged and broken rows over exactly as stored, so that verify names each', async () => {
    const events = Array.from({ length: 6 }, (_, i) => sshLogin(i))
    const ops = opsOf(events)
    await seal(store.indexEvents(ops).leaves)
    const changed = structuredClone(ops[1]?.doc) as AuditEvent
    changed.user = { name: 'someone-else' }
    store.db.prepare('UPDATE events SET doc = ? WHERE id = ?').run(JSON.stringify(changed), events[1]?.event.id)
    store.db.prepare('DELETE FROM events WHERE id = ?').run(events[2]?.event.id)
    store.db.prepare('UPDATE events SET doc = ? WHERE id = ?').run('{"truncated', events[3]?.event.id)
    // A forged event, correctly hashed, inserted with SQL under an index name of its own (no indices row).
    const forged = resealed(sshLogin(40, { start: '2026-11-30T00:00:00Z' }), e => { e.user = { name: 'intruder' } })
    store.db.prepare('INSERT INTO events (id, idx, ts, class, action, stream, sequence, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(forged.event.id, 'x-ssh-2026.11.30', Date.parse(forged['@timestamp']), 'ssh', 'ssh_login', forged.auditline.stream, 40, JSON.stringify(forged))

    assert.deepEqual(await source.indices(indexMatcher('x-*')), [DAY1, 'x-ssh-2026.11.30'])
    const docs = (await all(source.docs(DAY1, {}))).flat()
    assert.deepEqual(docs.find(d => d.id === events[1]?.event.id)?.source, changed)
    assert.equal(docs.find(d => d.id === events[3]?.event.id)?.source, '{"truncated')
    const found = (kind: string): Array<string | null> => r.findings.filter(f => f.kind === kind).map(f => f.id).sort()
    const r = await verifyAll()
    assert.deepEqual(found('changed'), [events[1]?.event.id, events[3]?.event.id].sort())
    assert.deepEqual(found('deleted'), [events[2]?.event.id])
    assert.deepEqual(found('inserted'), [forged.event.id])
    assert.equal(r.verified, 3)
  })

  it('pages the documents of an index in seq order, within the time range with both ends included', async () => {
    const events = Array.from({ length: 2001 }, (_, i) => sshLogin(i, { start: '2026-11-28T00:00:00Z' }))
    const reversed = [...events].reverse()
    store.indexEvents(opsOf(reversed))
    store.indexEvents(opsOf([sshLogin(0, { start: '2026-11-29T00:00:00Z', host: 'other' })]))
    const pages = await all(source.docs(DAY1, {}))
    assert.deepEqual(pages.map(p => p.length), [1000, 1000, 1])
    assert.deepEqual(pages.flat().map(d => d.id), reversed.map(e => e.event.id))
    assert.ok(pages.flat().every(d => d.index === DAY1 && (d.source as AuditEvent).event.hash !== undefined))
    const ranged = (await all(source.docs(DAY1, { from: '2026-11-28T00:00:10Z', to: '2026-11-28T01:00:10.000+01:00' }))).flat()
    assert.deepEqual(ranged.map(d => (d.source as AuditEvent)['@timestamp']).sort(), events.slice(10, 11).map(e => e['@timestamp']))
    const hour = (await all(source.docs(DAY1, { from: '2026-11-28T00:10:00Z', to: '2026-11-28T00:20:00Z' }))).flat()
    assert.equal(hour.length, 601)
    assert.deepEqual(await all(source.docs(DAY1, { from: '2026-11-29T00:00:00Z' })), [])
    assert.deepEqual(await all(source.docs('x-ssh-2020.01.01', {})), [])
  })

  it('gives documents by id within one index only', async () => {
    store.indexEvents(opsOf([sshLogin(0), sshLogin(1), sshLogin(2, { start: '2026-11-29T00:00:00Z' })]))
    const got = await source.getDocs(DAY1, [sshLogin(1).event.id, sshLogin(2, { start: '2026-11-29T00:00:00Z' }).event.id, 'f'.repeat(32)])
    assert.deepEqual([...got.keys()], [sshLogin(1).event.id])
    assert.equal((got.get(sshLogin(1).event.id) as AuditEvent).event.hash, sshLogin(1).event.hash)
    assert.equal((await source.getDocs(DAY1, [])).size, 0)
  })

  it('selects the checkpoints whose time range overlaps the range, and those too broken to have one', async () => {
    const [a, b, c] = await seal(store.indexEvents(opsOf([
      sshLogin(0), sshLogin(1), // 00:00:00 - 00:00:01
      sshLogin(3600), sshLogin(3601), // 01:00:00 - 01:00:01
      sshLogin(7200) // 02:00:00
    ])).leaves, 2)
    assert.ok(a !== undefined && b !== undefined && c !== undefined)
    store.db.prepare("INSERT INTO seals (seq, idx, from_ts, to_ts, doc) VALUES (3, ?, 'garbage', 'garbage', '{}')").run(DAY1)
    const seqs = async (from?: string, to?: string): Promise<string[]> =>
      (await all(source.checkpoints({ ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) }))).flat().map(s => s.docId)
    assert.deepEqual(await seqs(), ['cp-000000000000', 'cp-000000000001', 'cp-000000000002', 'cp-000000000003'])
    assert.deepEqual(await seqs('2026-11-28T00:00:01Z', '2026-11-28T00:59:59.999Z'), ['cp-000000000000', 'cp-000000000003'])
    assert.deepEqual(await seqs('2026-11-28T00:00:01.001Z', '2026-11-28T01:00:00Z'), ['cp-000000000001', 'cp-000000000003'])
    assert.deepEqual(await seqs('2026-11-28T03:00:00+02:00'), ['cp-000000000001', 'cp-000000000002', 'cp-000000000003'])
    assert.deepEqual(await seqs(undefined, '2026-11-27T23:59:59Z'), ['cp-000000000003'])
    const first = (await all(source.checkpoints({}))).flat()[0]
    assert.deepEqual(first, { docId: 'cp-000000000000', cp: a })
  })

  it('pages checkpoints by 1000 in seq order', async () => {
    const insert = store.db.prepare("INSERT INTO seals (seq, idx, from_ts, to_ts, doc) VALUES (?, 'x-ssh-2026.11.28', '2026-11-28T00:00:00Z', '2026-11-28T00:00:00Z', ?)")
    store.transaction(() => { for (let seq = 2100; seq >= 0; seq--) insert.run(seq, JSON.stringify({ seq })) })
    const pages = await all(source.checkpoints({}))
    assert.deepEqual(pages.map(p => p.length), [1000, 1000, 101])
    assert.deepEqual(pages.flat().map(p => (p.cp as { seq: number }).seq), Array.from({ length: 2101 }, (_, i) => i))
  })

  it('gives checkpoints by seq under the id their row has, whatever the document says', async () => {
    const [cp0, cp1] = await seal(store.indexEvents(opsOf([sshLogin(0), sshLogin(1)])).leaves, 1)
    assert.ok(cp0 !== undefined && cp1 !== undefined)
    // A copy of checkpoint 0 stored as seq 5: verify must see "stored as cp-…5 but says seq 0".
    store.db.prepare('INSERT INTO seals (seq, idx, from_ts, to_ts, doc) VALUES (5, ?, ?, ?, ?)').run(cp0.index, cp0.from, cp0.to, JSON.stringify(cp0))
    assert.deepEqual(await source.getCheckpoint(1), { docId: 'cp-000000000001', cp: cp1 })
    assert.equal(await source.getCheckpoint(2), null)
    assert.deepEqual(await source.readHead(), { docId: 'cp-000000000005', cp: cp0 } satisfies StoredCheckpoint)
    const got = await source.getCheckpoints([0, 2, 5])
    assert.deepEqual([...got.entries()].sort(([x], [y]) => x - y), [[0, { docId: 'cp-000000000000', cp: cp0 }], [5, { docId: 'cp-000000000005', cp: cp0 }]])
  })

  it('lists event indices, never statistics, including names only an event row carries', async () => {
    store.indexEvents(opsOf([sshLogin(1, { start: '2026-11-29T00:00:00Z' }), sshLogin(0)]))
    const s = statsDoc({ site: 'shop.example.org', granularity: 'day', start: '2026-11-28T00:00:00Z' })
    store.indexStats([{ index: 'x-stats-2026.11.28', id: s.id, doc: s }])
    store.db.prepare("DELETE FROM indices WHERE name = 'x-ssh-2026.11.29'").run()
    assert.deepEqual(await source.indices(() => true), [DAY1, DAY2])
    assert.deepEqual(await source.indices(indexMatcher('x-*,-x-ssh-2026.11.28')), [DAY2])
  })

  it('finds the retention records of the given deleted indices only', async () => {
    const target = (index: string, day: string): DeletionTarget => ({ index, eventClass: 'ssh', day, dayStartMs: Date.parse(day), periodDays: 90, expiredAt: '2027-02-27T00:00:00.000Z', uuid: `uuid-${index}`, documents: 3 })
    const at = new Date('2027-02-27T12:00:00Z')
    const r1 = deletionDone(target(DAY1, '2026-11-28'), 'deleted', 'indexer-1', 1, at)
    const r2 = deletionDone(target(DAY2, '2026-11-29'), 'deleted', 'indexer-1', 3, at)
    store.indexEvents(opsOf([r1, r2, sshLogin(0)]))
    const got = await source.retirementRecords([DAY1, 'x-ssh-2026.11.30'])
    assert.equal(got.length, 1)
    assert.deepEqual({ ...(got[0] as AuditEvent), event: { ...(got[0] as AuditEvent).event, ingested: undefined } }, { ...r1, event: { ...r1.event, ingested: undefined } })
    assert.deepEqual(await source.retirementRecords([]), [])
  })

  it('finds which sequence numbers of a stream are present, and which went to dead letters', async () => {
    store.indexEvents(opsOf([sshLogin(1), sshLogin(2), sshLogin(5), sshLogin(3, { host: 'other' })]))
    assert.deepEqual([...await source.sequencesIn('indexer-test/auth', 2, 5)].sort(), [2, 5])
    assert.deepEqual([...await source.sequencesIn('indexer-test/auth', 3, 4)], [])
    store.putDeadLetters([
      { '@timestamp': '2026-11-28T00:00:03.000Z', stage: 'ingest', code: 'AUD_ERR_INGEST_PARSE', reason: 'x', source: { stream: 'indexer-test/auth' }, sequence: 3 },
      { '@timestamp': '2026-11-28T00:00:04.000Z', stage: 'ingest', code: 'AUD_ERR_INGEST_PARSE', reason: 'x', source: { stream: 'indexer-test/auth' }, sequence: 4 },
      { '@timestamp': '2026-11-28T00:00:05.000Z', stage: 'index', code: 'AUD_ERR_INDEX_DECODE', reason: 'x', source: { topic: 'audit.ssh.v1' } }
    ])
    assert.deepEqual(await source.deadLetters(), new Map([['indexer-test/auth', new Set([3, 4])]]))
  })

  it('closes the store it reads', async () => {
    await source.close()
    assert.equal(store.db.open, false)
  })
})
