/**
 * Kafka → Elasticsearch. Offsets are committed only after Elasticsearch acknowledged every item of
 * the batch (or the item went to the dead-letter topic, acknowledged by Kafka) and the audit events in it
 * were sealed (./seal.ts: the sealer commits after each sealing round). 429/5xx items and
 * failed requests are retried with backoff while the partition waits (bounded memory: kafkajs fetches
 * no further for it); content errors go to `audit.deadletter.v1` with the reason. `_id` is the event's
 * deterministic id, so any redelivery overwrites instead of duplicating.
 */
import type { Client } from '@elastic/elasticsearch'
import type { Consumer, Producer, EachBatchPayload } from 'kafkajs'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { Ctx, Running } from '../../lib/component.ts'
import { sleep, backoff } from '../../lib/component.ts'
import { validateConfig } from '../../lib/config.ts'
import { AuditError } from '../../lib/errors.ts'
import { topicName, TOPICS, type TopicKey } from '../../lib/topics.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { IndexerConfigSchema, type IndexerConfig } from './config.ts'
import { decodeMessage, isRetriableStatus, type Decoded } from './transform.ts'
import { decodeStatsMessage, type StatsDecoded } from './stats.ts'
import { Sealer, elasticsearchSealStore, loadSealKey, type SealLeaf } from './seal.ts'
import { sealsIndexName } from '../../lib/seal-template.ts'

export function validate (raw: unknown): IndexerConfig {
  const cfg = validateConfig(IndexerConfigSchema, raw)
  for (const t of cfg.topics) {
    if (!(t in TOPICS)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`indexer.topics: unknown topic key "${t}" (known: ${Object.keys(TOPICS).join(', ')})`])
  }
  if (cfg.seal.privateKeyFile !== undefined && cfg.seal.privateKey !== undefined) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', ['indexer.seal: give privateKeyFile or privateKey, not both'])
  }
  return cfg
}

export interface IndexerDeps {
  consumer: Consumer
  producer: Producer
  es: Client
  topicPrefix: string
  indexPrefix: string
}

interface Metrics { indexed: Counter, retries: Counter, dead: Counter<'code'>, latency: Histogram }

/** The indexer's metrics (get-or-create: the Elasticsearch indexer and the embedded one register the same). */
export function indexerMetrics (reg: Registry): Metrics {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    indexed: get('auditline_indexer_docs_indexed_total', () => new Counter({ name: 'auditline_indexer_docs_indexed_total', help: 'Documents acknowledged by Elasticsearch', registers: [reg] })),
    retries: get('auditline_indexer_retries_total', () => new Counter({ name: 'auditline_indexer_retries_total', help: 'Bulk items or requests retried after 429/5xx or a connection failure', registers: [reg] })),
    dead: get('auditline_indexer_deadletters_total', () => new Counter({ name: 'auditline_indexer_deadletters_total', help: 'Messages sent to the dead-letter topic', labelNames: ['code'], registers: [reg] })),
    latency: get('auditline_indexer_bulk_seconds', () => new Histogram({ name: 'auditline_indexer_bulk_seconds', help: 'Bulk request latency', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [reg] }))
  }
}

type Op = Extract<Decoded | StatsDecoded, { op: unknown }>['op']

export async function start (cfg: IndexerConfig, ctx: Ctx, deps: IndexerDeps): Promise<Running> {
  const log = ctx.log.child({ component: 'indexer.elasticsearch' })
  const m = indexerMetrics(ctx.metrics)
  const stop = new AbortController()
  const deadTopic = topicName(deps.topicPrefix, 'deadletter')
  const topics = cfg.topics.map(k => topicName(deps.topicPrefix, k as TopicKey))
  const statsTopic = topicName(deps.topicPrefix, 'stats')
  const sealKey = loadSealKey(cfg.seal)
  if (sealKey.ephemeral) {
    const e = new AuditError('AUD_ERR_INDEX_SEAL_NO_KEY', [sealKey.keyId])
    log.warn({ error_code: e.code, key_id: sealKey.keyId, public_key: sealKey.publicPem }, `${e.message}. Create a key with auditline keygen and set indexer.seal.privateKeyFile.`)
  }
  const sealer = new Sealer({
    seals: elasticsearchSealStore(deps.es, sealsIndexName(deps.indexPrefix)),
    key: sealKey,
    sliceMs: cfg.seal.sliceMs,
    maxLeaves: cfg.seal.maxLeaves,
    commit: offsets => deps.consumer.commitOffsets(offsets),
    log,
    metrics: ctx.metrics
  })
  // Batches running in eachBatch: close() seals only after they are done (their leaves recorded).
  let inFlight = 0
  let idle: (() => void) | undefined

  /** Indexes `ops` until every one is acknowledged; returns the items rejected for their content. */
  async function indexAll (ops: Op[]): Promise<Array<{ op: Op, status: number, reason: string }>> {
    const rejected: Array<{ op: Op, status: number, reason: string }> = []
    let pending = ops
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (stop.signal.aborted) throw new AuditError('AUD_ERR_INDEX_BULK_RETRY', ['stopping'])
      // event.ingested is when the accepted attempt was sent: verify's grace period for unsealed events
      // (not yet sealed vs. inserted behind the indexer's back) counts from it (docs/integrity.md).
      const attemptAt = new Date().toISOString()
      for (const o of pending) if ('event' in o.doc) o.doc.event.ingested = attemptAt
      const operations = pending.flatMap(o => [{ index: { _index: o.index, _id: o.id } }, o.doc])
      const t0 = performance.now()
      let items
      try {
        const res = await deps.es.bulk({ operations, refresh: false })
        items = res.items
      } catch (err) {
        m.retries.inc()
        log.warn({ err: new AuditError('AUD_ERR_INDEX_BULK_RETRY', [err], { cause: err }), attempt, error_code: 'AUD_ERR_INDEX_BULK_RETRY' }, 'Elasticsearch bulk request failed; retrying.')
        await sleep(backoff(attempt, 250, cfg.maxRetryBackoffMs), stop.signal)
        continue
      } finally {
        m.latency.observe((performance.now() - t0) / 1000)
      }
      const retry: Op[] = []
      items.forEach((item, i) => {
        const r = item.index
        const op = pending[i] as Op
        if (r === undefined || (r.status >= 200 && r.status < 300)) { m.indexed.inc(); return }
        if (isRetriableStatus(r.status)) { retry.push(op); return }
        rejected.push({ op, status: r.status, reason: `${r.error?.type ?? 'error'}: ${r.error?.reason ?? 'rejected'}` })
      })
      if (retry.length > 0) {
        m.retries.inc(retry.length)
        await sleep(backoff(attempt, 250, cfg.maxRetryBackoffMs), stop.signal)
      }
      pending = retry
    }
    return rejected
  }

  async function sendDead (dead: DeadLetter[]): Promise<void> {
    if (dead.length === 0) return
    for (let attempt = 0; ; attempt++) {
      try {
        await deps.producer.send({ topic: deadTopic, acks: -1, messages: dead.map(d => ({ key: d.source.topic ?? null, value: JSON.stringify(d) })) })
        for (const d of dead) m.dead.inc({ code: d.code })
        return
      } catch (err) {
        if (stop.signal.aborted) throw err
        log.warn({ err, attempt }, 'Dead-letter topic did not acknowledge; retrying.')
        await sleep(backoff(attempt), stop.signal)
      }
    }
  }

  async function eachBatch (payload: EachBatchPayload): Promise<void> {
    inFlight++
    try {
      await indexBatch(payload)
    } finally {
      if (--inFlight === 0) idle?.()
    }
  }

  /** Decodes and indexes one chunk; returns the leaves to seal and the dead letters to send. */
  async function indexChunk (batch: EachBatchPayload['batch'], chunk: EachBatchPayload['batch']['messages']): Promise<{ leaves: SealLeaf[], dead: DeadLetter[] }> {
    const now = new Date()
    const ops: Op[] = []
    const dead: DeadLetter[] = []
    for (const msg of chunk) {
      const pos = { topic: batch.topic, partition: batch.partition, offset: msg.offset }
      // Statistics documents (anonymizer/stats) have their own schema and indices; everything else is an audit event.
      const d = batch.topic === statsTopic ? decodeStatsMessage(msg.value, pos, deps.indexPrefix, now) : decodeMessage(msg.value, pos, deps.indexPrefix, now)
      if ('op' in d) ops.push(d.op); else dead.push(d.dead)
    }
    const rejected = await indexAll(ops)
    const refused = new Set(rejected.map(r => r.op))
    // Audit events Elasticsearch acknowledged are sealed; statistics documents are not audit events.
    const leaves = ops.flatMap(o => 'event' in o.doc && !refused.has(o)
      ? [{ index: o.index, id: o.id, hash: o.doc.event.hash as string, '@timestamp': o.doc['@timestamp'] }]
      : [])
    for (const r of rejected) {
      dead.push({
        '@timestamp': now.toISOString(),
        stage: 'index',
        code: 'AUD_ERR_INDEX_BULK_REJECTED',
        reason: `HTTP ${r.status} ${r.reason}`,
        source: { topic: batch.topic, partition: batch.partition, ...('event' in r.op.doc ? { stream: r.op.doc.auditline.stream } : {}) },
        ...('event' in r.op.doc ? { sequence: r.op.doc.event.sequence } : {}),
        original: JSON.stringify(r.op.doc),
        original_encoding: 'utf8'
      })
    }
    return { leaves, dead }
  }

  /**
   * A fetched batch is cut into bulk requests of `bulkSize`, up to `bulkConcurrency` of them in flight (the
   * batch is already in memory, so this adds no buffering). Its offset moves only when every request is
   * acknowledged and the rejected items are in the dead-letter topic; the sealer commits it after the seal.
   */
  async function indexBatch ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const chunks: Array<EachBatchPayload['batch']['messages']> = []
    for (let i = 0; i < batch.messages.length; i += cfg.bulkSize) chunks.push(batch.messages.slice(i, i + cfg.bulkSize))
    for (let i = 0; i < chunks.length; i += cfg.bulkConcurrency) {
      if (!isRunning() || isStale() || stop.signal.aborted) return
      const group = chunks.slice(i, i + cfg.bulkConcurrency)
      const hb = setInterval(() => { heartbeat().catch(() => {}) }, 3000)
      let results
      try {
        results = await Promise.all(group.map(c => indexChunk(batch, c)))
        await sendDead(results.flatMap(r => r.dead))
      } finally {
        clearInterval(hb)
      }
      const lastChunk = group[group.length - 1]
      const last = lastChunk?.[lastChunk.length - 1]
      if (last === undefined) continue
      resolveOffset(last.offset)
      // Committed by the sealer once these events are sealed (autoCommit is off, so kafkajs never commits).
      sealer.record(results.flatMap(r => r.leaves), { topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() })
      await heartbeat()
      if (sealer.full()) await sealer.flush()
    }
  }

  await sealer.start()
  await deps.consumer.connect()
  await deps.producer.connect()
  deps.consumer.on(deps.consumer.events.GROUP_JOIN, e => {
    sealer.retain(new Map(Object.entries(e.payload.memberAssignment)))
  })
  await deps.consumer.subscribe({ topics, fromBeginning: cfg.fromBeginning })
  await deps.consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: cfg.partitionsConcurrently,
    eachBatch
  })
  log.info({ topics, groupId: cfg.groupId }, 'Indexer started.')

  return {
    async close () {
      stop.abort()
      // Stop fetching and let the running batch finish (an interrupted one is neither sealed nor committed),
      // then seal and commit while this process is still a group member: disconnect() leaves the group.
      try { deps.consumer.pause(topics.map(topic => ({ topic }))) } catch { /* not running: nothing to pause */ }
      sealer.windDown()
      if (inFlight > 0) await new Promise<void>(resolve => { idle = resolve })
      try {
        await sealer.close()
      } catch (err) {
        log.warn({ err, error_code: 'AUD_ERR_INDEX_SEAL_WRITE' }, 'Could not seal the last events; their offsets stay uncommitted and the next start seals them.')
      }
      await deps.consumer.disconnect()
      await deps.producer.disconnect()
      log.info('Indexer stopped.')
    }
  }
}
