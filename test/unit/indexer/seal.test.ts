import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@elastic/elasticsearch'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { isAuditError } from '../../../lib/errors.ts'
import { checkpointHash, generateSealKey, merkleRoot, verifyCheckpointSignature, type SealCheckpoint } from '../../../lib/seal.ts'
import { Sealer, chainCheckpoints, elasticsearchSealStore, checkpointDocId, compareLeaves, loadSealKey, planTrees, type SealLeaf, type TopicOffset } from '../../../indexer/elasticsearch/seal.ts'

const hex = (n: number): string => n.toString(16).padStart(64, '0')
const leaf = (index: string, id: string, ts: string, h = 1): SealLeaf => ({ index, id, hash: hex(h), '@timestamp': ts })
const silent = createLogger({ level: 'silent' })

describe('indexer: sealing order and chain', () => {
  it('puts leaves in (@timestamp instant, @timestamp text, id) order, whatever order they were indexed in', () => {
    const a = leaf('i', 'a', '2026-01-01T00:00:01Z')
    const b = leaf('i', 'b', '2026-01-01T00:00:00Z')
    const c = leaf('i', 'c', '2026-01-01T01:00:00+01:00') // same instant as b, other text
    const d = leaf('i', 'd', '2026-01-01T00:00:00Z')
    const expected = ['b', 'd', 'c', 'a']
    for (const order of [[a, b, c, d], [d, c, b, a], [c, a, d, b]]) {
      assert.deepEqual(planTrees(order, 10)[0]?.map(l => l.id), expected)
    }
    assert.ok(compareLeaves(b, d) < 0 && compareLeaves(d, b) > 0 && compareLeaves(b, b) === 0)
  })

  it('makes one tree per index (in name order), keeps one leaf per id (the last recorded) and cuts at maxLeaves', () => {
    const trees = planTrees([
      leaf('x-ssh', '1', '2026-01-01T00:00:00Z', 1),
      leaf('x-db', '2', '2026-01-01T00:00:00Z', 2),
      leaf('x-ssh', '3', '2026-01-01T00:00:01Z', 3),
      leaf('x-ssh', '1', '2026-01-01T00:00:00Z', 4), // replayed within the round
      leaf('x-ssh', '5', '2026-01-01T00:00:02Z', 5)
    ], 2)
    assert.deepEqual(trees.map(t => t.map(l => `${l.index}/${l.id}`)), [['x-db/2'], ['x-ssh/1', 'x-ssh/3'], ['x-ssh/5']])
    assert.equal(trees[1]?.[0]?.hash, hex(4))
  })

  it('chains checkpoints: consecutive seqs, prev = hash of the one before, root over the hashes, valid signatures', () => {
    const k = generateSealKey()
    const key = loadSealKey({ sliceMs: 1000, maxLeaves: 10, privateKey: k.privatePem }).key
    const trees = planTrees([leaf('a', '1', '2026-01-01T00:00:00Z', 1), leaf('b', '2', '2026-01-01T00:00:05Z', 2), leaf('b', '3', '2026-01-01T00:00:03Z', 3)], 10)
    const [first, second] = chainCheckpoints(trees, null, key, new Date('2026-01-01T00:01:00Z')) as [SealCheckpoint, SealCheckpoint]
    assert.equal(first.seq, 0)
    assert.equal(first.prev, null)
    assert.equal(second.seq, 1)
    assert.equal(second.prev, checkpointHash(first))
    assert.deepEqual(second.ids, ['3', '2'])
    assert.equal(second.from, '2026-01-01T00:00:03Z')
    assert.equal(second.to, '2026-01-01T00:00:05Z')
    assert.equal(second.root, merkleRoot([hex(3), hex(2)]))
    assert.equal(second.key_id, k.keyId)
    assert.equal(second.signed_at, '2026-01-01T00:01:00.000Z')
    for (const cp of [first, second]) assert.ok(verifyCheckpointSignature(cp, createPublicKey(k.publicPem)))
    const next = chainCheckpoints([trees[0] as SealLeaf[]], { seq: 41, hash: 'ab' }, key, new Date())[0] as SealCheckpoint
    assert.equal(next.seq, 42)
    assert.equal(next.prev, 'ab')
    assert.equal(checkpointDocId(42), 'cp-000000000042')
  })
})

describe('indexer: seal key', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-sealkey-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads a PKCS#8 PEM file and names the key by its SPKI fingerprint', async () => {
    const k = generateSealKey()
    const file = join(dir, 'k.pem')
    await writeFile(file, k.privatePem)
    const loaded = loadSealKey({ sliceMs: 1000, maxLeaves: 1, privateKeyFile: file })
    assert.equal(loaded.keyId, k.keyId)
    assert.equal(loaded.ephemeral, false)
  })

  it('without a key, draws a throw-away one and says so', () => {
    const a = loadSealKey({ sliceMs: 1000, maxLeaves: 1 })
    const b = loadSealKey({ sliceMs: 1000, maxLeaves: 1 })
    assert.equal(a.ephemeral, true)
    assert.notEqual(a.keyId, b.keyId)
    assert.match(a.publicPem, /BEGIN PUBLIC KEY/)
  })

  it('refuses a missing file and a key that is not Ed25519 with AUD_ERR_INDEX_SEAL_KEY', async () => {
    assert.throws(() => loadSealKey({ sliceMs: 1000, maxLeaves: 1, privateKeyFile: join(dir, 'nope.pem') }), e => isAuditError(e, 'AUD_ERR_INDEX_SEAL_KEY'))
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    assert.throws(() => loadSealKey({ sliceMs: 1000, maxLeaves: 1, privateKey: ec }), e => isAuditError(e, 'AUD_ERR_INDEX_SEAL_KEY') && /Ed25519/.test(e.message))
  })
})

/** The Elasticsearch boundary of the sealer: a seals index in memory, with create-only semantics. */
class FakeSeals {
  docs = new Map<string, SealCheckpoint>()
  failWrites = 0
  log: string[] = []
  /** Another process's checkpoint slipped in before ours (409 on our next create). */
  inject?: SealCheckpoint

  client (): Client {
    const err = (status: number, type: string): Error => Object.assign(new Error(type), { meta: { statusCode: status, body: { error: { type } } } })
    const fake = {
      indices: { exists: async () => true, create: async () => ({}) },
      search: async () => {
        const last = [...this.docs.values()].sort((a, b) => b.seq - a.seq)[0]
        return { hits: { hits: last === undefined ? [] : [{ _id: checkpointDocId(last.seq), _source: last }] } }
      },
      get: async ({ id }: { id: string }) => {
        const d = this.docs.get(id)
        if (d === undefined) throw err(404, 'not_found')
        return { found: true, _source: d }
      },
      create: async ({ id, document }: { id: string, document: SealCheckpoint }) => {
        if (this.inject !== undefined) { this.docs.set(checkpointDocId(this.inject.seq), this.inject); this.inject = undefined }
        if (this.failWrites > 0) { this.failWrites--; throw err(503, 'unavailable') }
        if (this.docs.has(id)) throw err(409, 'version_conflict_engine_exception')
        this.docs.set(id, document)
        this.log.push(`create ${id}`)
        return { result: 'created' }
      }
    }
    return fake as unknown as Client
  }
}

describe('indexer: Sealer', () => {
  const k = generateSealKey()
  const key = loadSealKey({ sliceMs: 1000, maxLeaves: 10, privateKey: k.privatePem })

  function sealer (fake: FakeSeals, commits: TopicOffset[][], maxLeaves = 10): Sealer {
    return new Sealer({
      seals: elasticsearchSealStore(fake.client(), 'x_seals'),
      key,
      sliceMs: 3_600_000,
      maxLeaves,
      commit: async o => { fake.log.push('commit'); commits.push(o) },
      log: silent,
      metrics: new Registry()
    })
  }

  it('writes the checkpoints of a round before it commits the offsets recorded with them', async () => {
    const fake = new FakeSeals()
    const commits: TopicOffset[][] = []
    const s = sealer(fake, commits)
    await s.start()
    s.record([leaf('x-ssh', 'a', '2026-01-01T00:00:00Z'), leaf('x-db', 'b', '2026-01-01T00:00:00Z')], { topic: 't', partition: 0, offset: '10' })
    s.record([], { topic: 't', partition: 0, offset: '12' })
    s.record([], { topic: 't', partition: 1, offset: '3' })
    await s.flush()
    assert.deepEqual(fake.log, ['create cp-000000000000', 'create cp-000000000001', 'commit'])
    assert.deepEqual(commits, [[{ topic: 't', partition: 0, offset: '12' }, { topic: 't', partition: 1, offset: '3' }]])
    await s.flush() // nothing new: nothing written, nothing committed
    assert.equal(fake.log.length, 3)
    await s.close()
  })

  it('continues the chain found in the seals index on start', async () => {
    const fake = new FakeSeals()
    const first = sealer(fake, [])
    await first.start()
    first.record([leaf('x', 'a', '2026-01-01T00:00:00Z')])
    await first.close()
    const second = sealer(fake, [])
    await second.start()
    second.record([leaf('x', 'b', '2026-01-01T00:00:00Z')])
    await second.close()
    const cp1 = fake.docs.get('cp-000000000001') as SealCheckpoint
    assert.equal(cp1.prev, checkpointHash(fake.docs.get('cp-000000000000') as SealCheckpoint))
  })

  it('re-chains onto another process\'s checkpoint when its own create conflicts', async () => {
    const fake = new FakeSeals()
    const s = sealer(fake, [])
    await s.start()
    const theirs = chainCheckpoints([[leaf('x', 'theirs', '2026-01-01T00:00:00Z')]], null, key.key, new Date())[0] as SealCheckpoint
    fake.inject = theirs
    s.record([leaf('x', 'ours', '2026-01-01T00:00:00Z')])
    await s.flush()
    const ours = fake.docs.get('cp-000000000001') as SealCheckpoint
    assert.deepEqual(ours.ids, ['ours'])
    assert.equal(ours.prev, checkpointHash(theirs))
    await s.close()
  })

  it('commits nothing when the seal cannot be written, and seals it (then commits) in the next round', async () => {
    const fake = new FakeSeals()
    const commits: TopicOffset[][] = []
    const s = sealer(fake, commits)
    await s.start()
    s.record([leaf('x', 'a', '2026-01-01T00:00:00Z')], { topic: 't', partition: 0, offset: '5' })
    fake.failWrites = 2
    await assert.rejects(s.flush(2), e => isAuditError(e, 'AUD_ERR_INDEX_SEAL_WRITE'))
    assert.equal(commits.length, 0)
    s.record([], { topic: 't', partition: 0, offset: '7' })
    await s.flush()
    assert.deepEqual(commits, [[{ topic: 't', partition: 0, offset: '7' }]])
    assert.deepEqual((fake.docs.get('cp-000000000000') as SealCheckpoint).ids, ['a'])
    await s.close()
  })

  it('is full when an index reaches maxLeaves, and forgets offsets of partitions it no longer owns', async () => {
    const fake = new FakeSeals()
    const commits: TopicOffset[][] = []
    const s = sealer(fake, commits, 2)
    await s.start()
    s.record([leaf('x', 'a', '2026-01-01T00:00:00Z'), leaf('y', 'b', '2026-01-01T00:00:00Z')], { topic: 't', partition: 0, offset: '1' })
    assert.equal(s.full(), false)
    s.record([leaf('x', 'c', '2026-01-01T00:00:00Z')], { topic: 't', partition: 1, offset: '9' })
    assert.equal(s.full(), true)
    s.retain(new Map([['t', [1]]]))
    await s.flush()
    assert.equal(s.full(), false)
    assert.deepEqual(commits, [[{ topic: 't', partition: 1, offset: '9' }]])
    await s.close()
  })
})
