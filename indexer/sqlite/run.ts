/**
 * The embedded indexer (#7): what indexer/elasticsearch/run.ts does for Kafka → Elasticsearch, done in-process
 * for the embedded store. A batch of messages (the shapes the Kafka topics carry) is decoded with the same
 * functions — a real calendar time, the index name; schema and hash were checked by the in-process producer —
 * and written to SQLite in ONE transaction together with its dead letters; the call returns after the commit (synchronous=FULL), which is what lets a collector move
 * its file checkpoint. Ids are deterministic, so a batch written again after a crash adds nothing.
 *
 * Sealing: the Sealer of the distributed mode, writing to the store's seals table. Its "offset" is the store's
 * insertion sequence: `sealed_seq` in meta moves only after the checkpoints sealing every event up to it were
 * written, and on start the events after it are sealed (a crash between commit and seal leaves nothing unsealed).
 */
import type { Ctx } from '../../lib/component.ts'
import { AuditError } from '../../lib/errors.ts'
import { TOPICS, topicName, type TopicKey } from '../../lib/topics.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import type { StatsDocument } from '../../anonymizer/stats/record.ts'
import type { IndexerConfig } from '../elasticsearch/config.ts'
import { decodeMessage, indexDeadLetter } from '../elasticsearch/transform.ts'
import { decodeStatsMessage } from '../elasticsearch/stats.ts'
import { indexerMetrics } from '../elasticsearch/run.ts'
import { Sealer, loadSealKey } from '../elasticsearch/seal.ts'
import { SqliteSealStore } from './seal-store.ts'
import type { SqliteStore } from './store.ts'

/** A message as a stage hands it over: topic and JSON value. */
export interface StoreMessage { topic: string, value: string }

const SEALED_KEY = 'indexer.sealed_seq'
const SEAL_PAGE = 10_000

export class EmbeddedIndexer {
  readonly #store: SqliteStore
  readonly #sealer: Sealer
  readonly #m: ReturnType<typeof indexerMetrics>
  readonly #kinds: Map<string, 'event' | 'stats' | 'dead'>
  #position = 0

  constructor (store: SqliteStore, cfg: Pick<IndexerConfig, 'seal'>, ctx: Ctx, topicPrefix: string) {
    const log = ctx.log.child({ component: 'indexer.sqlite' })
    this.#store = store
    this.#m = indexerMetrics(ctx.metrics)
    this.#kinds = new Map((Object.keys(TOPICS) as TopicKey[]).flatMap(k => {
      const kind = k === 'stats' ? 'stats' : k === 'deadletter' ? 'dead' : k === 'webRaw' || k === 'webAnon' ? undefined : 'event'
      return kind === undefined ? [] : [[topicName(topicPrefix, k), kind] as const]
    }))
    const key = loadSealKey(cfg.seal)
    if (key.ephemeral) {
      const e = new AuditError('AUD_ERR_INDEX_SEAL_NO_KEY', [key.keyId])
      log.warn({ error_code: e.code, key_id: key.keyId }, `${e.message}. Create a key with auditline keygen and set indexer.seal.privateKeyFile.`)
    }
    this.#sealer = new Sealer({
      seals: new SqliteSealStore(store),
      key,
      sliceMs: cfg.seal.sliceMs,
      maxLeaves: cfg.seal.maxLeaves,
      commit: async offsets => {
        const last = offsets[offsets.length - 1]
        if (last !== undefined) store.setMeta(SEALED_KEY, last.offset)
      },
      log,
      metrics: ctx.metrics
    })
  }

  /** Starts the sealing rounds and records the events a previous run committed but did not seal. */
  async start (): Promise<void> {
    await this.#sealer.start()
    let after = Number(this.#store.getMeta(SEALED_KEY) ?? '0')
    for (;;) {
      const { leaves, lastSeq } = this.#store.unsealedLeaves(after, SEAL_PAGE)
      if (lastSeq === after) break
      this.#sealer.record(leaves, { topic: 'events', partition: 0, offset: String(lastSeq) })
      after = lastSeq
      if (this.#sealer.full()) await this.#sealer.flush()
    }
  }

  /** Whether the indexer takes messages of this topic (audit events, statistics, dead letters). */
  accepts (topic: string): boolean {
    return this.#kinds.has(topic)
  }

  /**
   * Decodes `messages` and commits them in one transaction: audit events (ignored when their id is stored),
   * statistics documents (overwriting), dead letters — those handed in and those decoding produced. `extra` runs
   * inside the same transaction (a stage's position). Throws only if SQLite fails: then nothing was written.
   */
  write (messages: readonly StoreMessage[], extra?: () => void): { events: number, dead: number } {
    const now = new Date()
    const events: Array<{ index: string, id: string, doc: AuditEvent }> = []
    const stats: Array<{ index: string, id: string, doc: StatsDocument }> = []
    const dead: DeadLetter[] = []
    const prefix = this.#store.indexPrefix
    for (const msg of messages) {
      const kind = this.#kinds.get(msg.topic)
      const pos = { topic: msg.topic, partition: 0, offset: String(this.#position++) }
      if (kind === 'dead') {
        try {
          dead.push(JSON.parse(msg.value) as DeadLetter)
        } catch (err) {
          dead.push(indexDeadLetter(Buffer.from(msg.value), pos, now, 'AUD_ERR_INDEX_DECODE', `dead letter is not JSON: ${(err as Error).message}`).dead)
        }
        continue
      }
      if (kind === undefined) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`the embedded indexer does not take topic ${msg.topic}`])
      const value = Buffer.from(msg.value)
      // Every producer of this channel is in this process and checked and hashed its events (decodeMessage).
      const d = kind === 'stats' ? decodeStatsMessage(value, pos, prefix, now) : decodeMessage(value, pos, prefix, now, { inProcess: true })
      if ('dead' in d) { dead.push(d.dead); continue }
      if (kind === 'stats') stats.push(d.op as { index: string, id: string, doc: StatsDocument })
      else events.push(d.op as { index: string, id: string, doc: AuditEvent })
    }
    const { leaves, lastSeq } = this.#store.transaction(() => {
      const r = this.#store.indexEvents(events)
      if (stats.length > 0) this.#store.indexStats(stats)
      if (dead.length > 0) this.#store.putDeadLetters(dead)
      extra?.()
      return r
    })
    this.#m.indexed.inc(events.length + stats.length)
    for (const d of dead) this.#m.dead.inc({ code: d.code })
    if (leaves.length > 0) this.#sealer.record(leaves, { topic: 'events', partition: 0, offset: String(lastSeq) })
    if (this.#sealer.full()) this.#sealer.flush().catch(() => { /* logged by the sealer; the leaves stay pending */ })
    return { events: events.length, dead: dead.length }
  }

  /** A sealing round now (tests, `verify` right after ingestion). */
  async seal (): Promise<void> {
    await this.#sealer.flush()
  }

  async close (): Promise<void> {
    try {
      await this.#sealer.close()
    } catch {
      // Committed but unsealed events are sealed by the next start (from sealed_seq).
    }
  }
}
