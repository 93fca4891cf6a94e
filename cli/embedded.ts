/**
 * The embedded mode (#7): every stage in this process on one SQLite file, no Kafka, no Elasticsearch, no Java.
 *
 * The stages are the distributed mode's, joined by in-process channels that acknowledge end to end:
 *   collectors ─sendBatch─▶ channel ─▶ anonymizer (web access, epoch keys in memory) ─▶ anon_log ─▶ statistics ─┐
 *                               └────▶ indexer (decode, index name) ─▶ events / dead letters ◀────────────────┘
 * A collector's `sendBatch` returns only after the SQLite transaction holding its batch (events, dead letters,
 * anonymized records) committed with synchronous=FULL, so its file checkpoint never runs ahead of the store:
 * a crash loses nothing, and the batch re-read after it adds nothing (deterministic ids). Each channel is bounded:
 * a collector has one batch in flight, and web collectors wait while the statistics stage lags more than
 * `embedded.maxStatsLag` records behind. Raw web records (visitor addresses) never reach the file.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Message, Producer, RecordMetadata } from 'kafkajs'
import type { Ctx, Running } from '../lib/component.ts'
import { sleep } from '../lib/component.ts'
import { topicName } from '../lib/topics.ts'
import { SequenceJournal } from '../lib/sequence-journal.ts'
import { AuditError } from '../lib/errors.ts'
import type { AuditEvent } from '../lib/ecs.ts'
import { SqliteStore } from '../indexer/sqlite/store.ts'
import { EmbeddedIndexer, type StoreMessage } from '../indexer/sqlite/run.ts'
import { sqliteRetentionStore } from '../indexer/sqlite/retention-store.ts'
import { Anonymizer, anonymizeBatch } from '../anonymizer/run.ts'
import { startEmbeddedStats, type AnonLog, type EmbeddedStatsRunning } from '../anonymizer/stats/embedded.ts'
import { SqliteEventStore, sqliteSeals } from '../query-api/store/sqlite.ts'
import { journaledAuditor } from '../query-api/audit.ts'
import * as queryApi from '../query-api/run.ts'
import * as ingest from '../ingest/run.ts'
import * as panel from '../ingest/panel-http/run.ts'
import * as retention from '../indexer/retention/run.ts'
import { exportJobs } from './export.ts'
import { embeddedFile, type AppConfig } from './config.ts'
import { retentionDeps } from './retention.ts'

type Channel = Pick<Producer, 'send' | 'sendBatch'>

/** Anonymized records kept below the statistics position (far more than the batches in flight at a crash). */
const ANON_DEDUPE_MARGIN = 100_000

/** The store's anon_log as the statistics stage reads it. */
function anonLog (store: SqliteStore): AnonLog {
  return {
    readAnon: (after, limit) => store.readAnon(after, limit),
    getMeta: key => store.getMeta(key),
    setMeta: (key, value) => { store.setMeta(key, value) },
    // Kept a margin below the position: the ids of a batch re-sent after a crash must still be there to be ignored.
    trimAnon: below => store.trimAnon(below - ANON_DEDUPE_MARGIN),
    lastAnonSeq: () => store.lastAnonSeq()
  }
}

function text (v: Message['value']): string {
  return v === null ? '' : typeof v === 'string' ? v : v.toString('utf8')
}

/**
 * The in-process channel the collectors and the panel intake produce to (the `sendBatch`/`send` they call on a
 * Kafka producer in the distributed mode). Resolves after the commit; rejects (nothing written) if SQLite fails,
 * and the caller retries the same batch as it would after a Kafka error.
 */
export function embeddedChannel (deps: { indexer: EmbeddedIndexer, store: SqliteStore, anonymizer: Anonymizer, stats: EmbeddedStatsRunning, topicPrefix: string, maxStatsLag: number, signal: AbortSignal }): Channel {
  const webRaw = topicName(deps.topicPrefix, 'webRaw')
  const deadTopic = topicName(deps.topicPrefix, 'deadletter')
  let position = 0
  async function sendBatch ({ topicMessages }: { topicMessages?: Array<{ topic: string, messages: Message[] }> }): Promise<RecordMetadata[]> {
    const toIndex: StoreMessage[] = []
    const anonymized: Array<{ id: string, value: string }> = []
    for (const tm of topicMessages ?? []) {
      if (tm.topic === webRaw) {
        // Bounded: while the statistics stage is behind, web collectors wait (and read no further).
        while (deps.stats.lag() > deps.maxStatsLag && !deps.signal.aborted) await sleep(50, deps.signal)
        const msgs = tm.messages.map(m => ({ value: m.value === null ? null : Buffer.from(text(m.value)), offset: String(position++) }))
        const { out, dead } = anonymizeBatch(deps.anonymizer, msgs, { topic: webRaw, partition: 0 }, Date.now())
        for (const a of out) anonymized.push({ id: a.event.id, value: JSON.stringify(a) })
        for (const d of dead) toIndex.push({ topic: deadTopic, value: JSON.stringify(d) })
      } else if (deps.indexer.accepts(tm.topic)) {
        for (const m of tm.messages) toIndex.push({ topic: tm.topic, value: text(m.value) })
      } else {
        throw new AuditError('AUD_ERR_CONFIG_INVALID', [`no embedded stage takes topic ${tm.topic}`])
      }
    }
    deps.indexer.write(toIndex, anonymized.length > 0 ? () => { deps.store.appendAnon(anonymized) } : undefined)
    return []
  }
  return {
    sendBatch,
    send: async ({ topic, messages }) => await sendBatch({ topicMessages: [{ topic, messages }] })
  }
}

/** Retention on the embedded store; its deletion records go through the indexer like every audit event. */
function embeddedRetentionDeps (cfg: AppConfig, ctx: Ctx, store: SqliteStore, indexer: EmbeddedIndexer, now: () => Date): retention.RetentionDeps {
  const apiTopic = topicName(cfg.kafka.topicPrefix, 'api')
  return {
    ...retentionDeps(cfg, ctx, sqliteRetentionStore(store), now),
    publish: async (events: readonly AuditEvent[]) => { indexer.write(events.map(e => ({ topic: apiTopic, value: JSON.stringify(e) }))) }
  }
}

/** One retention run on the embedded store (`auditline retention` in the embedded mode). */
export async function runEmbeddedRetention (cfg: AppConfig, ctx: Ctx, opts: { dryRun?: boolean, now?: () => Date } = {}): Promise<retention.RetentionReport> {
  const store = SqliteStore.open(embeddedFile(cfg), { indexPrefix: cfg.elasticsearch.indexPrefix })
  const indexer = new EmbeddedIndexer(store, cfg.indexer, ctx, cfg.kafka.topicPrefix)
  try {
    await indexer.start()
    const deps = embeddedRetentionDeps(cfg, ctx, store, indexer, opts.now ?? (() => new Date()))
    if (opts.dryRun === true) delete deps.publish
    return await retention.run(cfg.retention, deps, { dryRun: opts.dryRun === true })
  } finally {
    await indexer.close()
    store.close()
  }
}

/** The read side for `auditline export` (and anything else reading the embedded store). */
export function openEmbeddedRead (cfg: AppConfig): { store: SqliteEventStore, seals: ReturnType<typeof sqliteSeals>, close: () => void } {
  const store = SqliteStore.open(embeddedFile(cfg), { indexPrefix: cfg.elasticsearch.indexPrefix })
  return { store: new SqliteEventStore(store.db), seals: sqliteSeals(store.db), close: () => { store.close() } }
}

export interface EmbeddedRunning extends Running {
  url: string
  store: SqliteStore
  collect: ingest.IngestRunning
  panel?: panel.PanelRunning
  /** The channel the collectors produce to (tests hand events to it as a collector would). */
  channel: Channel
  /** A sealing round now. */
  seal (): Promise<void>
  /** Resolves once the statistics stage has read every anonymized record appended so far. */
  statsCaughtUp (): Promise<void>
}

/** Starts every stage of the embedded mode; `close()` stops intake, drains stage by stage, seals and closes the file. */
export async function startEmbedded (cfg: AppConfig, ctx: Ctx, opts: {
  now?: () => Date
  /** The anonymizer (its epoch keys), injected by tests that check where the key does not go. */
  anonymizer?: Anonymizer
} = {}): Promise<EmbeddedRunning> {
  const log = ctx.log.child({ component: 'embedded' })
  const file = embeddedFile(cfg)
  const store = SqliteStore.open(file, { indexPrefix: cfg.elasticsearch.indexPrefix })
  const closers: Array<() => Promise<void>> = [async () => { store.close() }]
  const closeAll = async (): Promise<void> => { for (const c of closers.splice(0).reverse()) await c() }
  try {
    const prefix = cfg.kafka.topicPrefix
    const indexer = new EmbeddedIndexer(store, cfg.indexer, ctx, prefix)
    await indexer.start()
    closers.push(() => indexer.close())
    const stats = startEmbeddedStats(cfg.stats, ctx, anonLog(store), {
      writeStats: (docs, dead, extra) => {
        indexer.write([
          ...docs.map(value => ({ topic: topicName(prefix, 'stats'), value })),
          ...dead.map(d => ({ topic: topicName(prefix, 'deadletter'), value: JSON.stringify(d) }))
        ], extra)
      }
    })
    closers.push(() => stats.close())
    const anonymizer = opts.anonymizer ?? new Anonymizer(cfg.anonymizer)
    const expire = setInterval(() => { anonymizer.ring.expire() }, Math.min(60_000, Math.max(1000, cfg.anonymizer.graceMs)))
    closers.push(async () => { clearInterval(expire); anonymizer.destroy() })
    const stop = new AbortController()
    closers.push(async () => { stop.abort() })
    const channel = embeddedChannel({ indexer, store, anonymizer, stats, topicPrefix: prefix, maxStatsLag: cfg.embedded.maxStatsLag, signal: stop.signal })

    const journal = await SequenceJournal.open(join(cfg.stateDir, 'query-api'), 'query-api', 100_000)
    // The API's own audit events are committed to the store before the answer, as Kafka acknowledges them in the distributed mode.
    const apiTopic = topicName(prefix, 'api')
    const auditor = journaledAuditor(journal, cfg.ingest.host === '' ? hostname() : cfg.ingest.host, async event => { indexer.write([{ topic: apiTopic, value: JSON.stringify(event) }]) })
    closers.push(() => auditor.close())
    const events = new SqliteEventStore(store.db)
    const exports = exportJobs(cfg, ctx.log, events, sqliteSeals(store.db))
    const api = await queryApi.start(cfg.queryApi, ctx, { store: events, auditor, exports })
    closers.push(() => api.close())

    if (cfg.retention.intervalMs > 0) {
      const scheduled = retention.startScheduled(cfg.retention, embeddedRetentionDeps(cfg, ctx, store, indexer, opts.now ?? (() => new Date())))
      closers.push(() => scheduled.close())
    }
    const collect = await ingest.start(cfg.ingest, { ...ctx, producer: channel, topicPrefix: prefix })
    closers.push(() => collect.close())
    const panelIntake = cfg.panel.clients.length > 0 ? await panel.start(cfg.panel, { ...ctx, producer: channel, topicPrefix: prefix }) : undefined
    if (panelIntake !== undefined) closers.push(() => panelIntake.close())
    log.info({ file, url: api.url }, 'Embedded pipeline started.')
    return {
      url: api.url,
      store,
      collect,
      ...(panelIntake === undefined ? {} : { panel: panelIntake }),
      channel,
      seal: () => indexer.seal(),
      statsCaughtUp: () => stats.caughtUp(),
      async close () {
        // Reverse start order: intake first, then the channel, the stages, the indexer's last seal, the file.
        await closeAll()
        log.info('Embedded pipeline stopped.')
      }
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
