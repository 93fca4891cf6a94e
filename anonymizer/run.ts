/**
 * The anonymizer stage: `web.access.raw.v1` → `web.access.anon.v1`. Offsets are committed only after the
 * anonymized batch was acknowledged (acks=all). The epoch keys live only in this process's memory; a
 * timer destroys them when their epoch (plus grace) ends, even without traffic. A raw record that cannot
 * be read, or arrives after its epoch's key is gone, is dead-lettered with its position and reason only —
 * never with its content, which holds visitor addresses.
 */
import type { Consumer, Producer, EachBatchPayload, Message } from 'kafkajs'
import { Counter, Histogram, Gauge, type Registry, type Metric } from 'prom-client'
import type { Ctx, Running } from '../lib/component.ts'
import { sleep } from '../lib/component.ts'
import { validateConfig } from '../lib/config.ts'
import { topicName } from '../lib/topics.ts'
import { sendUntilAcked, type TopicMessages } from '../lib/kafka.ts'
import type { DeadLetter } from '../lib/deadletter.ts'
import { isAuditError } from '../lib/errors.ts'
import { assertWebAccessRecord } from '../ingest/web-access/record.ts'
import { AnonymizerConfigSchema, type AnonymizerConfig } from './config.ts'
import { EpochKeyRing } from './anonymize-ip/epoch-key.ts'
import { EpochMapper } from './anonymize-ip/mapper.ts'
import { anonymizeRecord, type TransformCaches } from './transform.ts'
import type { AnonymizedAccess } from './record.ts'
import type { ScrubOptions } from './anonymize-ip/text.ts'

function metric<T extends Metric> (reg: Registry, name: string, make: () => T): T {
  return (reg.getSingleMetric(name) as T | undefined) ?? make()
}

export function validate (raw: unknown): AnonymizerConfig {
  return validateConfig(AnonymizerConfigSchema, raw)
}

/** Keys, mappers and caches of the live epochs; everything of an epoch goes when its key is destroyed. */
export class Anonymizer {
  readonly ring: EpochKeyRing
  readonly #mappers = new Map<number, { mapper: EpochMapper, caches: TransformCaches }>()
  readonly scrub: ScrubOptions

  constructor (cfg: Pick<AnonymizerConfig, 'epochMs' | 'graceMs' | 'scrubQueryParams'>) {
    this.ring = new EpochKeyRing({ epochMs: cfg.epochMs, graceMs: cfg.graceMs })
    this.scrub = { queryParams: new Set(cfg.scrubQueryParams.map(p => p.toLowerCase())) }
    this.ring.onDestroy(epoch => {
      const m = this.#mappers.get(epoch)
      m?.mapper.clear()
      m?.caches.userAgents.clear()
      this.#mappers.delete(epoch)
    })
  }

  /** The mapper for a record time, or undefined when its epoch is over. */
  mapperFor (time: number, now = Date.now()): { mapper: EpochMapper, caches: TransformCaches } | undefined {
    const key = this.ring.keyFor(time, now)
    if (key === undefined) return undefined
    let m = this.#mappers.get(key.epoch)
    if (m === undefined) {
      m = { mapper: new EpochMapper(key), caches: { userAgents: new Map() } }
      this.#mappers.set(key.epoch, m)
    }
    return m
  }

  destroy (): void { this.ring.destroyAll() }
}

/**
 * Anonymizes a batch of raw web access messages (the stream stage and the embedded mode share it): the records
 * to pass on and the dead letters, which carry position and reason only — never content, which holds visitor
 * addresses. A record whose epoch key is gone cannot be anonymized any more and is dead-lettered.
 */
export function anonymizeBatch (anon: Anonymizer, msgs: ReadonlyArray<{ value: Buffer | null, offset: string }>, where: { topic: string, partition: number }, now: number): { out: AnonymizedAccess[], dead: DeadLetter[] } {
  const out: AnonymizedAccess[] = []
  const dead: DeadLetter[] = []
  for (const msg of msgs) {
    const fail = (code: string, reason: string): void => {
      dead.push({ '@timestamp': new Date(now).toISOString(), stage: 'anonymize', code, reason, source: { topic: where.topic, partition: where.partition, kafka_offset: msg.offset } })
    }
    let rec: unknown
    try {
      rec = JSON.parse(msg.value?.toString('utf8') ?? '')
      assertWebAccessRecord(rec)
    } catch (err) {
      // The error text of a schema failure names the field only; a JSON error would quote content: not kept.
      fail(isAuditError(err) ? err.code : 'AUD_ERR_INDEX_DECODE', isAuditError(err) ? err.message : 'not a JSON web access record')
      continue
    }
    const m = anon.mapperFor(Date.parse(rec['@timestamp']), now)
    if (m === undefined) { fail('AUD_ERR_ANON_EPOCH_OVER', `record of ${rec['@timestamp']} arrived after its epoch key was destroyed`); continue }
    out.push(anonymizeRecord(rec, m.mapper, anon.scrub, m.caches))
  }
  return { out, dead }
}

export async function start (cfg: AnonymizerConfig, ctx: Ctx, deps: { consumer: Consumer, producer: Producer, topicPrefix: string }): Promise<Running> {
  const log = ctx.log.child({ component: 'anonymizer' })
  const reg: Registry = ctx.metrics
  // Get-or-create: a stage restarted in the same process (tests, `run`) finds its metrics registered already.
  const records = metric(reg, 'auditline_anonymizer_records_total', () => new Counter({ name: 'auditline_anonymizer_records_total', help: 'Raw web access records anonymized and acknowledged', registers: [reg] }))
  const dead = metric(reg, 'auditline_anonymizer_deadletters_total', () => new Counter({ name: 'auditline_anonymizer_deadletters_total', help: 'Raw records dead-lettered (position and reason only)', labelNames: ['code'], registers: [reg] }))
  const dwell = metric(reg, 'auditline_anonymizer_raw_dwell_seconds', () => new Histogram({ name: 'auditline_anonymizer_raw_dwell_seconds', help: 'Time from capture (raw message timestamp) to anonymized output acknowledged', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600], registers: [reg] }))
  const epochs = metric(reg, 'auditline_anonymizer_live_epoch_keys', () => new Gauge({ name: 'auditline_anonymizer_live_epoch_keys', help: 'Epoch keys held in memory (normally 1, 2 during a grace period)', registers: [reg] }))
  const anon = new Anonymizer(cfg)
  const stop = new AbortController()
  const rawTopic = topicName(deps.topicPrefix, 'webRaw')
  const outTopic = topicName(deps.topicPrefix, 'webAnon')
  const deadTopic = topicName(deps.topicPrefix, 'deadletter')
  const timer = setInterval(() => { anon.ring.expire(); epochs.set(anon.ring.liveEpochs.length) }, Math.min(60_000, Math.max(1000, cfg.graceMs)))

  async function sendAcked (topicMessages: TopicMessages[]): Promise<void> {
    const acked = await sendUntilAcked(deps.producer, topicMessages, {
      signal: stop.signal,
      onRetry: (err, attempt) => { log.warn({ err, attempt }, 'Kafka did not acknowledge anonymized records; retrying.') }
    })
    // Stopping: nothing after this may be committed (the caller's commit is skipped by this throw).
    if (!acked) throw new Error('stopped before Kafka acknowledged')
  }

  // Batches between fetch and commit: close() lets them finish, so that a graceful stop replays nothing.
  let inFlight = 0
  let idle: (() => void) | undefined

  async function eachBatch (payload: EachBatchPayload): Promise<void> {
    inFlight++
    try {
      await anonymizeBatchOf(payload)
    } finally {
      if (--inFlight === 0) idle?.()
    }
  }

  async function anonymizeBatchOf ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (!isRunning() || isStale() || stop.signal.aborted || batch.messages.length === 0) return
    const { out: anonymized, dead: failed } = anonymizeBatch(anon, batch.messages, { topic: batch.topic, partition: batch.partition }, Date.now())
    const out: Message[] = anonymized.map(a => ({ key: a.web.site, value: JSON.stringify(a) }))
    const dl: Message[] = failed.map(d => ({ value: JSON.stringify(d) }))
    for (const d of failed) dead.inc({ code: d.code })
    const topicMessages = [{ topic: outTopic, messages: out }]
    if (dl.length > 0) topicMessages.push({ topic: deadTopic, messages: dl })
    await sendAcked(topicMessages)
    const done = Date.now()
    for (const msg of batch.messages) dwell.observe(Math.max(0, done - Number(msg.timestamp)) / 1000)
    records.inc(out.length)
    const last = batch.messages[batch.messages.length - 1]
    if (last !== undefined) {
      resolveOffset(last.offset)
      await deps.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }])
    }
    await heartbeat()
  }

  await deps.consumer.connect()
  await deps.producer.connect()
  await deps.consumer.subscribe({ topics: [rawTopic], fromBeginning: true })
  await deps.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch })
  log.info({ from: rawTopic, to: outTopic, epochMs: cfg.epochMs }, 'Anonymizer started.')
  return {
    async close () {
      // Stop fetching, let the batch in hand be produced and committed (bounded: a Kafka that does not acknowledge
      // must not hold the shutdown; that batch is then replayed by the successor), then leave the group.
      try { deps.consumer.pause([{ topic: rawTopic }]) } catch { /* not running */ }
      if (inFlight > 0) await Promise.race([new Promise<void>(resolve => { idle = resolve }), sleep(5000)])
      stop.abort()
      clearInterval(timer)
      await deps.consumer.disconnect()
      await deps.producer.disconnect()
      anon.destroy()
      log.info('Anonymizer stopped; epoch keys destroyed.')
    }
  }
}
