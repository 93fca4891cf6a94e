/**
 * Sealing what the indexer indexed (#5, docs/integrity.md). After Elasticsearch acknowledged a bulk request,
 * the indexer records (index, id, event.hash, @timestamp) of every audit event in it. Every `seal.sliceMs`
 * (and at once when an index reaches `seal.maxLeaves`) the recorded leaves are sealed: one RFC 6962 Merkle tree
 * per index over its leaves in (@timestamp, id) order, in an Ed25519-signed checkpoint that carries the hash of
 * the previous checkpoint. Checkpoints go to `<prefix>_seals` under the id `cp-<seq>`, written create-only, so
 * that two indexer processes appending to the one chain cannot overwrite each other (the loser re-reads the head
 * and re-chains).
 *
 * Kafka offsets are committed here, after the checkpoints that seal the batches were written, never before:
 * an indexer that dies with unsealed events has not committed them, and its successor re-indexes (same ids,
 * same content) and seals them. A replay seals an event a second time under the same hash, which verify accepts.
 */
import type { Client } from '@elastic/elasticsearch'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../lib/log.ts'
import { backoff, sleep } from '../../lib/component.ts'
import { AuditError } from '../../lib/errors.ts'
import { checkpointHash, checkpointStatementHash, generateSealKey, keyId, loadPrivateKey, merkleRoot, signCheckpoint, verifyCheckpointSignature, type SealCheckpoint, type UnsignedCheckpoint } from '../../lib/seal.ts'
import { SEALS_MAPPINGS, checkpointDocId } from '../../lib/seal-template.ts'
import type { IndexerConfig } from './config.ts'
import type { SealStore } from '../store.ts'

/** One indexed audit event, as a checkpoint seals it. */
export interface SealLeaf {
  index: string
  id: string
  /** `event.hash` (hex) as indexed. */
  hash: string
  '@timestamp': string
}

export { checkpointDocId }

export interface TopicOffset { topic: string, partition: number, offset: string }

/** The last checkpoint of the chain: what the next one links to. */
export interface ChainHead {
  seq: number
  hash: string
  /** `checkpointStatementHash` of the last checkpoint (root statements chain too); absent → null link. */
  statement?: string
}

function timeOf (ts: string): number {
  const t = Date.parse(ts)
  return Number.isNaN(t) ? 0 : t
}

/** Tree order: (@timestamp as an instant, @timestamp text, id). Total and independent of arrival order. */
export function compareLeaves (a: SealLeaf, b: SealLeaf): number {
  return timeOf(a['@timestamp']) - timeOf(b['@timestamp']) ||
    (a['@timestamp'] < b['@timestamp'] ? -1 : a['@timestamp'] > b['@timestamp'] ? 1 : 0) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

/**
 * Groups recorded leaves into the trees of one sealing round: per index (in name order), one leaf per id
 * (the one recorded last: a replay within the round indexed the same event again), sorted in tree order,
 * cut into trees of at most `maxLeaves`. Pure.
 */
export function planTrees (leaves: readonly SealLeaf[], maxLeaves: number): SealLeaf[][] {
  const byIndex = new Map<string, Map<string, SealLeaf>>()
  for (const l of leaves) {
    let ids = byIndex.get(l.index)
    if (ids === undefined) { ids = new Map(); byIndex.set(l.index, ids) }
    ids.set(l.id, l)
  }
  const trees: SealLeaf[][] = []
  for (const index of [...byIndex.keys()].sort()) {
    const sorted = [...(byIndex.get(index) as Map<string, SealLeaf>).values()].sort(compareLeaves)
    for (let i = 0; i < sorted.length; i += maxLeaves) trees.push(sorted.slice(i, i + maxLeaves))
  }
  return trees
}

/** The unsigned checkpoint of one tree, linked to `head`. Pure. */
export function unsignedCheckpoint (tree: readonly SealLeaf[], head: ChainHead | null): UnsignedCheckpoint {
  const first = tree[0]
  if (first === undefined) throw new RangeError('a checkpoint seals at least one event')
  const stamps = tree.map(l => l['@timestamp'])
  return {
    v: 1,
    seq: head === null ? 0 : head.seq + 1,
    index: first.index,
    from: stamps.reduce((a, b) => timeOf(b) < timeOf(a) ? b : a),
    to: stamps.reduce((a, b) => timeOf(b) > timeOf(a) ? b : a),
    ids: tree.map(l => l.id),
    hashes: tree.map(l => l.hash),
    timestamps: stamps,
    size: tree.length,
    root: merkleRoot(tree.map(l => l.hash)),
    prev: head?.hash ?? null,
    prev_statement: head?.statement ?? null,
    signed_at: ''
  }
}

/** Signs the trees of a round into consecutive checkpoints after `head`. Pure but for the signature. */
export function chainCheckpoints (trees: readonly SealLeaf[][], head: ChainHead | null, key: KeyObject, signedAt: Date): SealCheckpoint[] {
  const out: SealCheckpoint[] = []
  let h = head
  for (const tree of trees) {
    const cp = signCheckpoint({ ...unsignedCheckpoint(tree, h), signed_at: signedAt.toISOString() }, key)
    out.push(cp)
    h = { seq: cp.seq, hash: checkpointHash(cp), statement: checkpointStatementHash(cp) }
  }
  return out
}

export interface SealKey { key: KeyObject, keyId: string, ephemeral: boolean, publicPem: string }

/**
 * The signing key from `indexer.seal` (file or PEM). Without one, a throw-away key: the indexer still seals
 * (the chain and the roots still expose a change to anyone who kept the public key the log shows), but nobody
 * can prove later which key was the deployment's. The caller warns (docs/decisions.md, "Integrity (#5)").
 */
export function loadSealKey (cfg: IndexerConfig['seal']): SealKey {
  let pem: string | undefined = cfg.privateKey
  if (cfg.privateKeyFile !== undefined) {
    try {
      pem = readFileSync(cfg.privateKeyFile, 'utf8')
    } catch (err) {
      throw new AuditError('AUD_ERR_INDEX_SEAL_KEY', [cfg.privateKeyFile, err], { cause: err })
    }
  }
  if (pem === undefined) {
    const k = generateSealKey()
    return { key: loadPrivateKey(k.privatePem), keyId: k.keyId, ephemeral: true, publicPem: k.publicPem }
  }
  let key: KeyObject
  try {
    key = loadPrivateKey(pem)
  } catch (err) {
    throw new AuditError('AUD_ERR_INDEX_SEAL_KEY', [cfg.privateKeyFile ?? 'indexer.seal.privateKey', err], { cause: err })
  }
  const pub = createPublicKey(key)
  return { key, keyId: keyId(pub), ephemeral: false, publicPem: pub.export({ type: 'spki', format: 'pem' }).toString() }
}

/** Creates the seals index with its explicit mapping unless it exists (`auditline init` also installs a template). */
export async function ensureSealsIndex (es: Client, sealsIndex: string, replicas = 0): Promise<void> {
  if (await es.indices.exists({ index: sealsIndex })) return
  try {
    await es.indices.create({ index: sealsIndex, settings: { number_of_shards: 1, number_of_replicas: replicas }, mappings: SEALS_MAPPINGS })
  } catch (err) {
    if (errorType(err) !== 'resource_already_exists_exception') throw err
  }
}

export function errorType (err: unknown): string | undefined {
  const body = (err as { meta?: { body?: { error?: { type?: string } } } }).meta?.body
  return body?.error?.type
}

function statusOf (err: unknown): number | undefined {
  return (err as { meta?: { statusCode?: number } }).meta?.statusCode
}

/** Reads checkpoint `seq` by id (real-time GET: sees a checkpoint written a moment ago); null when absent. */
export async function getCheckpoint (es: Client, sealsIndex: string, seq: number): Promise<{ docId: string, cp: unknown } | null> {
  const docId = checkpointDocId(seq)
  try {
    const res = await es.get<unknown>({ index: sealsIndex, id: docId })
    return res.found ? { docId, cp: res._source } : null
  } catch (err) {
    if (statusOf(err) === 404) return null
    throw err
  }
}

/**
 * The newest checkpoint: the highest `seq` the search finds, then forward by id until one is missing
 * (a checkpoint written less than a refresh ago is found by GET, not by search). Null for an empty chain.
 */
export async function readHead (es: Client, sealsIndex: string): Promise<{ docId: string, cp: SealCheckpoint } | null> {
  let best: { docId: string, cp: SealCheckpoint } | null = null
  try {
    const res = await es.search<SealCheckpoint>({ index: sealsIndex, size: 1, sort: [{ seq: 'desc' }], query: { match_all: {} } })
    const hit = res.hits.hits[0]
    if (hit?._source !== undefined) best = { docId: hit._id as string, cp: hit._source }
  } catch (err) {
    if (errorType(err) !== 'index_not_found_exception') throw err
    return null
  }
  for (let seq = best === null ? 0 : best.cp.seq + 1; ; seq++) {
    const next = await getCheckpoint(es, sealsIndex, seq)
    if (next === null) return best
    best = { docId: next.docId, cp: next.cp as SealCheckpoint }
  }
}

/** The seals index of Elasticsearch as a SealStore (create-only writes: `op_type=create`). */
export function elasticsearchSealStore (es: Client, sealsIndex: string): SealStore {
  return {
    name: sealsIndex,
    ensure: async () => { await ensureSealsIndex(es, sealsIndex) },
    readHead: async () => await readHead(es, sealsIndex),
    async create (cp) {
      try {
        await es.create({ index: sealsIndex, id: checkpointDocId(cp.seq), document: cp })
        return true
      } catch (err) {
        if (statusOf(err) === 409) return false
        throw err
      }
    }
  }
}

export interface SealerOptions {
  /** Where checkpoints go: `<prefix>_seals` in Elasticsearch or the embedded store's table. */
  seals: SealStore
  key: SealKey
  sliceMs: number
  maxLeaves: number
  /** Commits Kafka offsets; called only after the checkpoints sealing everything before them were written. */
  commit: (offsets: TopicOffset[]) => Promise<void>
  log: Logger
  metrics: Registry
  now?: () => Date
}

interface SealMetrics { checkpoints: Counter, sealed: Counter, pending: Gauge, ephemeral: Gauge }

function sealMetrics (reg: Registry): SealMetrics {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    checkpoints: get('auditline_indexer_seal_checkpoints_total', () => new Counter({ name: 'auditline_indexer_seal_checkpoints_total', help: 'Seal checkpoints written', registers: [reg] })),
    sealed: get('auditline_indexer_sealed_events_total', () => new Counter({ name: 'auditline_indexer_sealed_events_total', help: 'Events sealed into checkpoints (a replayed event counts again)', registers: [reg] })),
    pending: get('auditline_indexer_seal_pending_events', () => new Gauge({ name: 'auditline_indexer_seal_pending_events', help: 'Indexed events waiting for the next seal', registers: [reg] })),
    ephemeral: get('auditline_indexer_seal_ephemeral_key', () => new Gauge({ name: 'auditline_indexer_seal_ephemeral_key', help: '1 when seals are signed with a throw-away key (no indexer.seal key configured)', registers: [reg] }))
  }
}

/**
 * Collects leaves and offsets, seals them periodically and then commits the offsets. Rounds never overlap
 * (a flush waits for the one before it), so checkpoints are appended in order.
 */
export class Sealer {
  readonly #o: SealerOptions
  readonly #m: SealMetrics
  readonly #log: Logger
  #leaves: SealLeaf[] = []
  #perIndex = new Map<string, number>()
  #offsets = new Map<string, TopicOffset>()
  #head: ChainHead | null = null
  #round: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  /** Aborted by close(): a round retrying without limit gives up, so that the last round can run. */
  readonly #closing = new AbortController()

  constructor (o: SealerOptions) {
    this.#o = o
    this.#m = sealMetrics(o.metrics)
    this.#log = o.log
    this.#m.ephemeral.set(o.key.ephemeral ? 1 : 0)
  }

  async start (): Promise<void> {
    await this.#o.seals.ensure()
    await this.#loadHead()
    const head = this.#head
    this.#log.info({ seals_index: this.#o.seals.name, head_seq: head?.seq ?? null, key_id: this.#o.key.keyId, slice_ms: this.#o.sliceMs }, 'Sealing indexed events.')
    this.#timer = setInterval(() => { this.flush().catch(err => { this.#log.warn({ err, error_code: 'AUD_ERR_INDEX_SEAL_WRITE' }, 'Sealing round failed; its events stay pending.') }) }, this.#o.sliceMs)
    this.#timer.unref()
  }

  async #loadHead (): Promise<void> {
    const head = await this.#o.seals.readHead()
    if (head === null) { this.#head = null; return }
    if (head.cp.key_id === this.#o.key.keyId && !verifyCheckpointSignature(head.cp, createPublicKey(this.#o.key.key))) {
      // Chaining on is still right (verify reports the bad checkpoint); the operator should know now.
      this.#log.warn({ seq: head.cp.seq, error_code: 'AUD_ERR_INDEX_SEAL_WRITE' }, 'The newest seal checkpoint does not verify with this indexer\'s key; run auditline verify.')
    }
    this.#head = { seq: head.cp.seq, hash: checkpointHash(head.cp), statement: checkpointStatementHash(head.cp) }
  }

  /** Records acknowledged events and the offset after them (committed once they are sealed). */
  record (leaves: readonly SealLeaf[], offset?: TopicOffset): void {
    for (const l of leaves) {
      this.#leaves.push(l)
      this.#perIndex.set(l.index, (this.#perIndex.get(l.index) ?? 0) + 1)
    }
    if (offset !== undefined) this.#offsets.set(`${offset.topic}\u0000${offset.partition}`, offset)
    this.#m.pending.set(this.#leaves.length)
  }

  /** An index has reached `maxLeaves`: the caller should flush before indexing more (bounded memory). */
  full (): boolean {
    for (const n of this.#perIndex.values()) if (n >= this.#o.maxLeaves) return true
    return false
  }

  /** Drops pending offsets of partitions no longer assigned (after a rebalance their new owner commits them). */
  retain (assigned: ReadonlyMap<string, readonly number[]>): void {
    for (const [k, o] of this.#offsets) if (!(assigned.get(o.topic) ?? []).includes(o.partition)) this.#offsets.delete(k)
  }

  /** Seals everything recorded so far, then commits the offsets recorded with it. */
  flush (attempts = Infinity): Promise<void> {
    const run = this.#round.then(() => this.#flush(attempts))
    this.#round = run.catch(() => {})
    return run
  }

  async #flush (attempts: number): Promise<void> {
    const leaves = this.#leaves
    const offsets = [...this.#offsets.values()]
    if (leaves.length === 0 && offsets.length === 0) return
    this.#leaves = []
    this.#perIndex = new Map()
    this.#offsets = new Map()
    const trees = planTrees(leaves, this.#o.maxLeaves)
    let done = 0
    try {
      for (const tree of trees) {
        await this.#append(tree, attempts)
        done++
      }
    } catch (err) {
      // Put back what was not sealed (sealed trees again would only repeat leaves) and the offsets: nothing is
      // committed that is not sealed. Offsets recorded meanwhile are newer and win.
      for (const tree of trees.slice(done)) this.record(tree)
      for (const o of offsets) {
        const k = `${o.topic}\u0000${o.partition}`
        if (!this.#offsets.has(k)) this.#offsets.set(k, o)
      }
      this.#m.pending.set(this.#leaves.length)
      throw err
    }
    this.#m.pending.set(this.#leaves.length)
    if (offsets.length > 0) {
      try {
        await this.#o.commit(offsets)
      } catch (err) {
        // Sealed but not committed: a successor re-indexes and seals these events again (same hashes). Harmless.
        this.#log.warn({ err }, 'Failed to commit offsets after sealing; they will be replayed.')
      }
    }
  }

  async #append (tree: SealLeaf[], attempts: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cp = chainCheckpoints([tree], this.#head, this.#o.key.key, (this.#o.now ?? (() => new Date()))())[0] as SealCheckpoint
      let created: boolean
      try {
        created = await this.#o.seals.create(cp)
      } catch (err) {
        const e = new AuditError('AUD_ERR_INDEX_SEAL_WRITE', [cp.seq, err], { cause: err })
        const unlimited = attempts === Infinity
        if (attempt + 1 >= attempts || (unlimited && this.#closing.signal.aborted)) throw e
        this.#log.warn({ err: e, attempt, error_code: e.code }, 'Cannot write a seal checkpoint; retrying.')
        await sleep(backoff(attempt, 250, 30_000), unlimited ? this.#closing.signal : undefined)
        continue
      }
      if (!created) {
        // Another indexer process appended first: link to its checkpoint instead.
        await this.#loadHead()
        continue
      }
      this.#head = { seq: cp.seq, hash: checkpointHash(cp), statement: checkpointStatementHash(cp) }
      this.#m.checkpoints.inc()
      this.#m.sealed.inc(tree.length)
      return
    }
  }

  /** Last round (a few attempts: a successor re-indexes and seals whatever this one could not), then stop. */
  async close (): Promise<void> {
    this.windDown()
    await this.flush(3)
  }

  /** No more timed rounds; a round retrying without limit gives up (close() then runs the last one). */
  windDown (): void {
    clearInterval(this.#timer)
    this.#closing.abort()
  }
}
