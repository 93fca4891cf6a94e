/**
 * Kafka → Elasticsearch. Offsets are committed only after Elasticsearch acknowledged every item of
 * the batch (or the item went to the dead-letter topic, acknowledged by Kafka). 429/5xx items and
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

export function validate (raw: unknown): IndexerConfig {
  const cfg = validateConfig(IndexerConfigSchema, raw)
  for (const t of cfg.topics) {
    if (!(t in TOPICS)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`indexer.topics: unknown topic key "${t}" (known: ${Object.keys(TOPICS).join(', ')})`])
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

function metricsIn (reg: Registry): Metrics {
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
  const m = metricsIn(ctx.metrics)
  const stop = new AbortController()
  const deadTopic = topicName(deps.topicPrefix, 'deadletter')
  const topics = cfg.topics.map(k => topicName(deps.topicPrefix, k as TopicKey))
  const statsTopic = topicName(deps.topicPrefix, 'stats')

  /** Indexes `ops` until every one is acknowledged; returns the items rejected for their content. */
  async function indexAll (ops: Op[]): Promise<Array<{ op: Op, status: number, reason: string }>> {
    const rejected: Array<{ op: Op, status: number, reason: string }> = []
    let pending = ops
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (stop.signal.aborted) throw new AuditError('AUD_ERR_INDEX_BULK_RETRY', ['stopping'])
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

  async function eachBatch ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    for (let i = 0; i < batch.messages.length; i += cfg.bulkSize) {
      if (!isRunning() || isStale()) return
      const chunk = batch.messages.slice(i, i + cfg.bulkSize)
      const now = new Date()
      const ops: Op[] = []
      const dead: DeadLetter[] = []
      for (const msg of chunk) {
        const pos = { topic: batch.topic, partition: batch.partition, offset: msg.offset }
        // Statistics documents (anonymizer/stats) have their own schema and indices; everything else is an audit event.
        const d = batch.topic === statsTopic ? decodeStatsMessage(msg.value, pos, deps.indexPrefix, now) : decodeMessage(msg.value, pos, deps.indexPrefix, now)
        if ('op' in d) ops.push(d.op); else dead.push(d.dead)
      }
      const hb = setInterval(() => { heartbeat().catch(() => {}) }, 3000)
      try {
        const rejected = await indexAll(ops)
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
        await sendDead(dead)
      } finally {
        clearInterval(hb)
      }
      const last = chunk[chunk.length - 1]
      if (last === undefined) continue
      resolveOffset(last.offset)
      await deps.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }])
      await heartbeat()
    }
  }

  await deps.consumer.connect()
  await deps.producer.connect()
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
      // consumer.disconnect() waits for the running eachBatch; an interrupted batch is not committed.
      await deps.consumer.disconnect()
      await deps.producer.disconnect()
      log.info('Indexer stopped.')
    }
  }
}
