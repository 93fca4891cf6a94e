/**
 * Wires the stages from one validated config: each `start*` opens what its stage needs and returns a
 * `close()` that stops intake, flushes, commits and disconnects, in that order.
 */
import type { Ctx, Running } from '../lib/component.ts'
import { createKafka, createProducer, createConsumer, ensureTopics } from '../lib/kafka.ts'
import { createEsClient, ensureTemplates } from '../lib/elasticsearch.ts'
import { AuditError } from '../lib/errors.ts'
import * as ingest from '../ingest/run.ts'
import * as indexer from '../indexer/elasticsearch/run.ts'
import * as retention from '../indexer/retention/run.ts'
import * as queryApi from '../query-api/run.ts'
import * as panel from '../ingest/panel-http/run.ts'
import * as anonymizer from '../anonymizer/run.ts'
import * as stats from '../anonymizer/stats/run.ts'
import { ElasticsearchEventStore } from '../query-api/store/elasticsearch.ts'
import { kafkaAuditor } from '../query-api/audit.ts'
import { elasticsearchSeals } from '../query-api/exports.ts'
import { sealsIndexName } from '../lib/seal-template.ts'
import { exportJobs } from './export.ts'
import { SequenceJournal } from '../lib/sequence-journal.ts'
import { readinessOf, watchElasticsearch, watchKafka } from '../lib/metrics.ts'
import { topicName } from '../lib/topics.ts'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { isEmbedded, type AppConfig } from './config.ts'
import { retentionDeps } from './retention.ts'
import { runEmbeddedRetention } from './embedded.ts'

function needKafka (cfg: AppConfig): void {
  if (cfg.kafka.brokers.length === 0) throw new AuditError('AUD_ERR_CONFIG_INVALID', ['kafka.brokers is empty (set it in the config file or AUDITLINE_KAFKA__BROKERS; without Kafka, `auditline run` runs every stage embedded)'])
}

function needEs (cfg: AppConfig): void {
  if (cfg.elasticsearch.url === '') throw new AuditError('AUD_ERR_CONFIG_INVALID', ['elasticsearch.url is empty (set it in the config file or AUDITLINE_ELASTICSEARCH__URL)'])
}

/** Creates the topic catalog and the index templates. Idempotent. */
export async function init (cfg: AppConfig, ctx: Ctx): Promise<{ created: string[], updated: string[], templates: string[] }> {
  needKafka(cfg)
  needEs(cfg)
  const admin = createKafka(cfg.kafka, ctx.log).admin()
  await admin.connect()
  try {
    const topics = await ensureTopics(admin, cfg.kafka)
    const es = createEsClient(cfg.elasticsearch)
    try {
      const templates = await ensureTemplates(es, cfg.elasticsearch)
      return { ...topics, templates }
    } finally {
      await es.close()
    }
  } finally {
    await admin.disconnect()
  }
}

export async function startCollect (cfg: AppConfig, ctx: Ctx): Promise<ingest.IngestRunning> {
  needKafka(cfg)
  const producer = createProducer(createKafka(cfg.kafka, ctx.log))
  watchKafka(readinessOf(ctx.metrics), 'collect.producer', producer)
  await producer.connect()
  const running = await ingest.start(cfg.ingest, { ...ctx, producer, topicPrefix: cfg.kafka.topicPrefix })
  return {
    drained: () => running.drained(),
    async close () {
      await running.close()
      await producer.disconnect()
    }
  }
}

/** The control-panel HTTP intake with its own idempotent producer (answers 202 only after acks=all). */
export async function startPanelIntake (cfg: AppConfig, ctx: Ctx): Promise<panel.PanelRunning> {
  needKafka(cfg)
  const producer = createProducer(createKafka(cfg.kafka, ctx.log))
  watchKafka(readinessOf(ctx.metrics), 'panel.producer', producer)
  await producer.connect()
  let running: panel.PanelRunning
  try {
    running = await panel.start(cfg.panel, { ...ctx, producer, topicPrefix: cfg.kafka.topicPrefix })
  } catch (err) {
    await producer.disconnect()
    throw err
  }
  return {
    url: running.url,
    async close () {
      await running.close()
      await producer.disconnect()
    }
  }
}

/** The anonymizer stage: raw web access → anonymized records. Its epoch keys live only in this process. */
export async function startAnonymize (cfg: AppConfig, ctx: Ctx): Promise<Running> {
  needKafka(cfg)
  const kafka = createKafka(cfg.kafka, ctx.log)
  const consumer = createConsumer(kafka, cfg.anonymizer.groupId, { maxBytes: cfg.anonymizer.maxBytes })
  const producer = createProducer(kafka)
  watchKafka(readinessOf(ctx.metrics), 'anonymizer.consumer', consumer)
  watchKafka(readinessOf(ctx.metrics), 'anonymizer.producer', producer)
  return await anonymizer.start(cfg.anonymizer, ctx, { consumer, producer, topicPrefix: cfg.kafka.topicPrefix })
}

/** The statistics stage: anonymized records → per-site hourly/daily statistics (never sees a raw IP). */
export async function startStats (cfg: AppConfig, ctx: Ctx): Promise<Running> {
  needKafka(cfg)
  const kafka = createKafka(cfg.kafka, ctx.log)
  // The admin client lets the stage restore its saved watermarks after a restart (docs/stats.md).
  const admin = kafka.admin()
  await admin.connect()
  const consumer = createConsumer(kafka, cfg.stats.groupId, { maxBytes: cfg.stats.maxBytes })
  const producer = createProducer(kafka)
  watchKafka(readinessOf(ctx.metrics), 'stats.consumer', consumer)
  watchKafka(readinessOf(ctx.metrics), 'stats.producer', producer)
  const running = await stats.start(cfg.stats, ctx, {
    consumer,
    producer,
    admin,
    topicPrefix: cfg.kafka.topicPrefix
  })
  return {
    async close () {
      await running.close()
      await admin.disconnect()
    }
  }
}

export async function startIndex (cfg: AppConfig, ctx: Ctx): Promise<Running> {
  needKafka(cfg)
  needEs(cfg)
  const kafka = createKafka(cfg.kafka, ctx.log)
  const es = createEsClient(cfg.elasticsearch)
  const consumer = createConsumer(kafka, cfg.indexer.groupId, { maxBytes: 4 * cfg.indexer.maxBytesPerPartition, maxBytesPerPartition: cfg.indexer.maxBytesPerPartition })
  const producer = createProducer(kafka)
  const readiness = readinessOf(ctx.metrics)
  watchKafka(readiness, 'indexer.consumer', consumer)
  watchKafka(readiness, 'indexer.producer', producer)
  watchElasticsearch(readiness, 'indexer.elasticsearch', es)
  const running = await indexer.start(cfg.indexer, ctx, {
    consumer,
    producer,
    es,
    topicPrefix: cfg.kafka.topicPrefix,
    indexPrefix: cfg.elasticsearch.indexPrefix
  })
  return {
    async close () {
      await running.close()
      await es.close()
    }
  }
}

/**
 * One retention run (`auditline retention`): deletes expired daily indices, each recorded in `audit.api.v1`
 * before and after. A dry run only reports what would be deleted (no Kafka needed). `now` is injectable for tests.
 */
export async function runRetention (cfg: AppConfig, ctx: Ctx, opts: { dryRun?: boolean, now?: () => Date } = {}): Promise<retention.RetentionReport> {
  if (isEmbedded(cfg)) return await runEmbeddedRetention(cfg, ctx, opts)
  needEs(cfg)
  const dryRun = opts.dryRun === true
  if (!dryRun) needKafka(cfg)
  const es = createEsClient(cfg.elasticsearch)
  const producer = dryRun ? undefined : createProducer(createKafka(cfg.kafka, ctx.log))
  try {
    await producer?.connect()
    const deps = retentionDeps(cfg, ctx, retention.elasticsearchStore(es), opts.now ?? (() => new Date()))
    if (producer !== undefined) deps.publish = retention.kafkaPublisher(producer, topicName(cfg.kafka.topicPrefix, 'api'))
    return await retention.run(cfg.retention, deps, { dryRun })
  } finally {
    await producer?.disconnect()
    await es.close()
  }
}

/** Scheduled retention runs (every `retention.intervalMs`), started next to the indexer; `intervalMs: 0` starts nothing. */
export async function startRetention (cfg: AppConfig, ctx: Ctx, opts: { now?: () => Date } = {}): Promise<Running> {
  if (cfg.retention.intervalMs === 0) {
    ctx.log.info({ component: 'indexer.retention' }, 'Scheduled retention is off (retention.intervalMs = 0).')
    return { async close () {} }
  }
  needKafka(cfg)
  needEs(cfg)
  const es = createEsClient(cfg.elasticsearch)
  const producer = createProducer(createKafka(cfg.kafka, ctx.log))
  watchElasticsearch(readinessOf(ctx.metrics), 'retention.elasticsearch', es)
  watchKafka(readinessOf(ctx.metrics), 'retention.producer', producer)
  await producer.connect()
  const deps = retentionDeps(cfg, ctx, retention.elasticsearchStore(es), opts.now ?? (() => new Date()))
  deps.publish = retention.kafkaPublisher(producer, topicName(cfg.kafka.topicPrefix, 'api'))
  const running = retention.startScheduled(cfg.retention, deps)
  return {
    async close () {
      await running.close()
      await producer.disconnect()
      await es.close()
    }
  }
}

export async function startServe (cfg: AppConfig, ctx: Ctx): Promise<queryApi.QueryApiRunning> {
  needEs(cfg)
  needKafka(cfg) // the API's own audit events go through Kafka like every other event
  const es = createEsClient(cfg.elasticsearch)
  const producer = createProducer(createKafka(cfg.kafka, ctx.log))
  watchElasticsearch(readinessOf(ctx.metrics), 'query-api.elasticsearch', es)
  watchKafka(readinessOf(ctx.metrics), 'query-api.producer', producer)
  await producer.connect()
  const journal = await SequenceJournal.open(join(cfg.stateDir, 'query-api'), 'query-api', 100_000)
  const auditor = kafkaAuditor(producer, topicName(cfg.kafka.topicPrefix, 'api'), journal, cfg.ingest.host === '' ? hostname() : cfg.ingest.host)
  const store = new ElasticsearchEventStore(es, cfg.elasticsearch.indexPrefix)
  const exports = exportJobs(cfg, ctx.log, store, elasticsearchSeals(es, sealsIndexName(cfg.elasticsearch.indexPrefix)))
  const running = await queryApi.start(cfg.queryApi, ctx, { store, auditor, exports })
  return {
    url: running.url,
    async close () {
      await running.close()
      await auditor.close()
      await producer.disconnect()
      await es.close()
    }
  }
}

/** Every stage in this process, closed in pipeline order so that each drains into the next. */
export async function startAll (cfg: AppConfig, ctx: Ctx): Promise<{ url: string, collect: ingest.IngestRunning, panel?: panel.PanelRunning, close: () => Promise<void> }> {
  await init(cfg, ctx)
  const api = await startServe(cfg, ctx)
  const index = await startIndex(cfg, ctx)
  const retain = await startRetention(cfg, ctx)
  const statistics = await startStats(cfg, ctx)
  const anonymize = await startAnonymize(cfg, ctx)
  const collect = await startCollect(cfg, ctx)
  // The intake listens only when panel clients are configured: no open port that nobody may use.
  const panelIntake = cfg.panel.clients.length > 0 ? await startPanelIntake(cfg, ctx) : undefined
  return {
    url: api.url,
    collect,
    ...(panelIntake === undefined ? {} : { panel: panelIntake }),
    async close () {
      await panelIntake?.close()
      await collect.close()
      await anonymize.close()
      await statistics.close()
      await retain.close()
      await index.close()
      await api.close()
    }
  }
}
