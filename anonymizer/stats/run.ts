/**
 * The statistics stage: `web.access.anon.v1` → `stats.web.v1` (one document per site × hour and site × day,
 * aggregate.ts). Open buckets live in memory (bounded by `maxOpenBuckets`); a bucket is emitted when the
 * watermark of its partition passes its end, and again whenever a late record (within grace) changes it.
 *
 * Delivery (docs/stats.md): at-least-once in, overwrite-by-id out.
 * - A document's id is derived from site, granularity and bucket start, so every (re-)emission overwrites the
 *   previous one in Elasticsearch; the Kafka key is the site, so versions of a document stay in order.
 * - Offsets are committed only after the documents were acknowledged (acks=all), and only up to the lowest
 *   offset any bucket in memory still needs: after a crash every open bucket is rebuilt from all its records.
 * - The commit metadata carries the partition's watermark and the offset reached. On restart (or after a
 *   rebalance, which makes kafkajs re-read from the committed offset) the watermark is restored, so that
 *   re-read records of already final buckets are not counted into new, partial buckets that would overwrite
 *   complete documents; and the rebuilt buckets are held back until the partition caught up to where it was,
 *   so that no half-rebuilt document overwrites a complete one.
 */
import type { Admin, Consumer, Producer, EachBatchPayload, Message } from 'kafkajs'
import { sendUntilAcked, type TopicMessages } from '../../lib/kafka.ts'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Ctx, Running } from '../../lib/component.ts'
import { validateConfig } from '../../lib/config.ts'
import { topicName } from '../../lib/topics.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { isAuditError } from '../../lib/errors.ts'
import { assertAnonymized } from '../record.ts'
import { StatsConfigSchema, type StatsConfig } from './config.ts'
import { StatsAggregator, type Emission } from './aggregate.ts'
import { RecentIds } from './dedupe.ts'

export function validate (raw: unknown): StatsConfig {
  return validateConfig(StatsConfigSchema, raw)
}

export interface StatsDeps {
  /** A consumer of group `cfg.groupId`. */
  consumer: Consumer
  producer: Producer
  topicPrefix: string
  /**
   * Reads the group's committed offset metadata (the watermarks) after a restart or rebalance. Without it,
   * late records of buckets that were already final before a restart can be counted into a new, partial
   * bucket whose document then overwrites the complete one.
   */
  admin?: Admin
}

/** What the stage keeps in the commit metadata of each partition (Kafka allows 4 KiB by default). */
interface CommitMeta { v: 1, w: number | null, l: string }

function parseMeta (s: string | null | undefined): CommitMeta | undefined {
  if (s === null || s === undefined || s === '') return undefined
  try {
    const m = JSON.parse(s) as Partial<CommitMeta>
    return m.v === 1 && typeof m.l === 'string' && /^\d+$/.test(m.l) && (m.w === null || typeof m.w === 'number') ? m as CommitMeta : undefined
  } catch {
    return undefined
  }
}

/** The statistics stage's metrics (get-or-create: the Kafka stage and the embedded one register the same). */
export function statsMetrics (reg: Registry): { records: Counter<'result'>, docs: Counter, open: Gauge, closedEarly: Counter, dead: Counter<'code'> } {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    records: get('auditline_stats_records_total', () => new Counter({ name: 'auditline_stats_records_total', help: 'Anonymized records by what the statistics stage did with them (counted, day_only, too_late, invalid, duplicate)', labelNames: ['result'], registers: [reg] })),
    docs: get('auditline_stats_documents_total', () => new Counter({ name: 'auditline_stats_documents_total', help: 'Statistics documents emitted and acknowledged (re-emits included)', registers: [reg] })),
    open: get('auditline_stats_open_buckets', () => new Gauge({ name: 'auditline_stats_open_buckets', help: 'Buckets (site x hour, site x day) held in memory', registers: [reg] })),
    closedEarly: get('auditline_stats_days_closed_early_total', () => new Counter({ name: 'auditline_stats_days_closed_early_total', help: 'Days closed before end + grace because maxOpenBuckets was reached', registers: [reg] })),
    dead: get('auditline_stats_deadletters_total', () => new Counter({ name: 'auditline_stats_deadletters_total', help: 'Anonymized records the statistics stage could not read (dead-lettered)', labelNames: ['code'], registers: [reg] }))
  }
}

export async function start (cfg: StatsConfig, ctx: Ctx, deps: StatsDeps): Promise<Running> {
  const log = ctx.log.child({ component: 'anonymizer.stats' })
  const m = statsMetrics(ctx.metrics)
  const agg = new StatsAggregator(cfg)
  const stop = new AbortController()
  const inTopic = topicName(deps.topicPrefix, 'webAnon')
  const outTopic = topicName(deps.topicPrefix, 'stats')
  const deadTopic = topicName(deps.topicPrefix, 'deadletter')

  /** Offset after the last record processed, per partition (this generation). */
  const next = new Map<number, bigint>()
  /** Wall-clock time of the last batch per partition, for the idle rule. */
  const lastSeen = new Map<number, number>()
  /** Partitions being re-read after a restart: offset up to which their buckets are held back. */
  const replayUntil = new Map<number, bigint>()
  /** Ids of the last records per partition: a record the anonymizer delivered twice is counted once. */
  const recent = new Map<number, RecentIds>()
  const recentOf = (p: number): RecentIds => {
    let r = recent.get(p)
    if (r === undefined) { r = new RecentIds(cfg.dedupeWindow); recent.set(p, r) }
    return r
  }
  let restoredGeneration = -1
  let generation = 0
  let closing = false

  // One batch, idle tick or shutdown flush at a time: the aggregator is shared by every partition.
  let chain: Promise<unknown> = Promise.resolve()
  function exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn)
    chain = run.catch(() => {})
    return run
  }

  // A (re)join means kafkajs re-reads every assigned partition from its committed offset: rebuild from there.
  deps.consumer.on(deps.consumer.events.GROUP_JOIN, () => {
    generation++
    agg.clear()
    next.clear()
    lastSeen.clear()
    replayUntil.clear()
    recent.clear()
    m.open.set(0)
  })

  if (deps.admin === undefined) log.warn('No Kafka admin client given: watermarks are not restored after a restart (see docs/stats.md).')

  async function restore (gen: number): Promise<void> {
    if (restoredGeneration === gen || deps.admin === undefined) return
    const offsets = await deps.admin.fetchOffsets({ groupId: cfg.groupId, topics: [inTopic] })
    if (gen !== generation) return
    for (const t of offsets) {
      for (const p of t.partitions) {
        const meta = parseMeta(p.metadata)
        if (meta === undefined) continue
        if (meta.w !== null) agg.raiseWatermark(p.partition, meta.w)
        if (BigInt(meta.l) > BigInt(p.offset)) replayUntil.set(p.partition, BigInt(meta.l))
      }
    }
    restoredGeneration = gen
  }

  /** Sends in chunks under the broker's request limit (many sites' documents at once can exceed 1 MB), each acknowledged. */
  async function sendAcked (topicMessages: TopicMessages[]): Promise<void> {
    const acked = await sendUntilAcked(deps.producer, topicMessages, {
      signal: stop.signal,
      onRetry: (err, attempt) => { log.warn({ err, attempt }, 'Kafka did not acknowledge statistics documents; retrying.') }
    })
    // Stopping: nothing after this may be committed (the caller's commit is skipped by this throw).
    if (!acked) throw new Error('stopped before Kafka acknowledged')
  }

  /** Emits what is due (everything with `all`), then commits what no bucket in memory needs any more. */
  async function flush (gen: number, dead: Message[], all = false): Promise<void> {
    const closedEarly = agg.enforceLimit()
    if (closedEarly > 0) {
      m.closedEarly.inc(closedEarly)
      log.warn({ days: closedEarly, maxOpenBuckets: cfg.maxOpenBuckets }, 'Too many open statistics buckets; closed the oldest day early.')
    }
    const due: Emission[] = agg.due({ all, hold: p => replayUntil.has(p) })
    await sendAcked([
      { topic: outTopic, messages: due.map(e => ({ key: e.doc.site, value: JSON.stringify(e.doc) })) },
      { topic: deadTopic, messages: dead }
    ])
    if (gen !== generation) return
    for (const e of due) e.ack()
    m.docs.inc(due.length)
    agg.expire()
    m.open.set(agg.openBuckets)
    const commits = [...next].map(([partition, n]) => {
      const w = agg.watermark(partition)
      // While re-reading, keep the offset reached before the restart: a crash now must hold back as far.
      const until = replayUntil.get(partition)
      const reached = until !== undefined && until > n ? until : n
      const meta: CommitMeta = { v: 1, w: Number.isFinite(w) ? w : null, l: reached.toString() }
      return { topic: inTopic, partition, offset: agg.commitPoint(partition, n).toString(), metadata: JSON.stringify(meta) }
    })
    if (commits.length > 0) await deps.consumer.commitOffsets(commits)
  }

  async function eachBatch ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await exclusive(async () => {
      if (closing || !isRunning() || isStale() || batch.messages.length === 0) return
      const gen = generation
      await restore(gen)
      if (gen !== generation) return
      const p = batch.partition
      const replayingTo = replayUntil.get(p)
      const dead: Message[] = []
      // Position and reason only: the stage never copies record content into a dead letter.
      const fail = (offset: string, code: string, reason: string): void => {
        // A message re-read after a restart was dead-lettered the first time already.
        if (replayingTo !== undefined && BigInt(offset) < replayingTo) return
        const d: DeadLetter = { '@timestamp': new Date().toISOString(), stage: 'stats', code, reason, source: { topic: batch.topic, partition: p, kafka_offset: offset } }
        dead.push({ key: null, value: JSON.stringify(d) })
        m.dead.inc({ code })
      }
      for (const msg of batch.messages) {
        let rec: unknown
        try {
          rec = JSON.parse(msg.value?.toString('utf8') ?? '')
          assertAnonymized(rec)
        } catch (err) {
          // A schema error names the field, never its value; a JSON error could quote content: not kept.
          fail(msg.offset, isAuditError(err) ? err.code : 'AUD_ERR_STATS_DECODE', isAuditError(err) ? err.message : 'not a JSON anonymized web access record')
          continue
        }
        if (recentOf(p).seen(rec.event.id)) { m.records.inc({ result: 'duplicate' }); continue }
        const result = agg.add(rec, { partition: p, offset: BigInt(msg.offset) })
        if (result === 'invalid') fail(msg.offset, 'AUD_ERR_STATS_DECODE', '@timestamp is not a valid time')
        m.records.inc({ result })
      }
      const last = batch.messages[batch.messages.length - 1] as (typeof batch.messages)[number]
      const n = BigInt(last.offset) + 1n
      next.set(p, n)
      lastSeen.set(p, Date.now())
      const until = replayUntil.get(p)
      if (until !== undefined && n >= until) replayUntil.delete(p)
      await flush(gen, dead)
      if (gen !== generation) return
      resolveOffset(last.offset)
      await heartbeat()
    })
  }

  // Idle partitions: their watermark follows the wall clock, so that the last hour of a quiet site is emitted.
  const idleTimer = setInterval(() => {
    exclusive(async () => {
      if (closing) return
      const now = Date.now()
      let moved = false
      for (const [p, seen] of lastSeen) {
        if (now - seen < cfg.idleMs || replayUntil.has(p)) continue
        const before = agg.watermark(p)
        agg.raiseWatermark(p, now - cfg.allowedLatenessMs)
        moved ||= agg.watermark(p) > before
      }
      if (moved) await flush(generation, [])
    }).catch((err: unknown) => { log.warn({ err }, 'Statistics idle flush failed; the next batch retries.') })
  }, Math.min(cfg.idleMs, 10_000))

  await deps.admin?.connect()
  await deps.consumer.connect()
  await deps.producer.connect()
  await deps.consumer.subscribe({ topics: [inTopic], fromBeginning: true })
  // One partition at a time: the aggregator and the commit points are shared.
  await deps.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch })
  log.info({ from: inTopic, to: outTopic, allowedLatenessMs: cfg.allowedLatenessMs, graceMs: cfg.graceMs }, 'Statistics stage started.')

  return {
    async close () {
      clearInterval(idleTimer)
      // Stop intake but stay in the group: the final commit needs the membership.
      deps.consumer.pause([{ topic: inTopic }])
      try {
        await exclusive(async () => {
          closing = true
          await flush(generation, [], true)
        })
      } catch (err) {
        log.warn({ err }, 'Final statistics flush failed; open buckets are rebuilt from the committed offsets on restart.')
      }
      stop.abort()
      await deps.consumer.disconnect()
      await deps.producer.disconnect()
      await deps.admin?.disconnect()
      log.info({ openBuckets: agg.openBuckets }, 'Statistics stage stopped.')
    }
  }
}
