/**
 * The whole configuration file: one section per component, validated once at start-up
 * (`additionalProperties: false` everywhere: a misspelt key is an error, not a silent default).
 */
import { join } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { KafkaConfigSchema } from '../lib/kafka.ts'
import { ElasticsearchConfigSchema } from '../lib/elasticsearch.ts'
import { loadConfig } from '../lib/config.ts'
import { IngestConfigSchema } from '../ingest/config.ts'
import { AnonymizerConfigSchema } from '../anonymizer/config.ts'
import { StatsConfigSchema } from '../anonymizer/stats/config.ts'
import { IndexerConfigSchema } from '../indexer/elasticsearch/config.ts'
import { RetentionConfigSchema } from '../indexer/retention/config.ts'
import { QueryApiConfigSchema } from '../query-api/config.ts'
import { PanelConfigSchema } from '../ingest/panel-http/config.ts'
import * as ingest from '../ingest/run.ts'
import * as indexer from '../indexer/elasticsearch/run.ts'
import * as queryApi from '../query-api/run.ts'
import * as panel from '../ingest/panel-http/run.ts'

export const AppConfigSchema = Type.Object({
  log: Type.Object({
    /** pino level: `trace`, `debug`, `info`, `warn`, `error`. */
    level: Type.Union(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map(l => Type.Literal(l)), { default: 'info' })
  }, { additionalProperties: false, default: {} }),
  /** Directory for local state (API keys created by `run`, checkpoints by default). */
  stateDir: Type.String({ default: './var', minLength: 1 }),
  metrics: Type.Object({
    /** Address of the Prometheus endpoint (`GET /metrics`). */
    host: Type.String({ default: '127.0.0.1' }),
    /** Port of the Prometheus endpoint; 0 picks a free one, -1 turns it off. */
    port: Type.Integer({ default: 9464, minimum: -1, maximum: 65535 })
  }, { additionalProperties: false, default: {} }),
  /**
   * `embedded`: every stage in one process on a SQLite file, no Kafka or Elasticsearch; `distributed`: Kafka +
   * Elasticsearch; `auto` (default): embedded when neither `kafka.brokers` nor `elasticsearch.url` is set.
   */
  mode: Type.Union([Type.Literal('auto'), Type.Literal('embedded'), Type.Literal('distributed')], { default: 'auto' }),
  embedded: Type.Object({
    /** The embedded store's SQLite file (WAL mode: `-wal` and `-shm` files beside it). Empty: `<stateDir>/auditline.db`. */
    file: Type.String({ default: '' }),
    /** Anonymized web records the statistics stage may lag behind before the web collectors wait (the bounded channel). */
    maxStatsLag: Type.Integer({ default: 100_000, minimum: 1000 })
  }, { additionalProperties: false, default: {} }),
  kafka: KafkaConfigSchema,
  elasticsearch: ElasticsearchConfigSchema,
  ingest: IngestConfigSchema,
  anonymizer: AnonymizerConfigSchema,
  stats: StatsConfigSchema,
  indexer: IndexerConfigSchema,
  /** Retention per event class and the scheduled deletion of expired indices (docs/retention.md). */
  retention: RetentionConfigSchema,
  queryApi: QueryApiConfigSchema,
  /** Control-panel HTTP intake (docs/sources/panel-http.md). */
  panel: PanelConfigSchema
}, { additionalProperties: false })

export type AppConfig = Static<typeof AppConfigSchema>

/** Whether this config runs the embedded mode (see `mode`). */
export function isEmbedded (cfg: Pick<AppConfig, 'mode' | 'kafka' | 'elasticsearch'>): boolean {
  return cfg.mode === 'embedded' || (cfg.mode === 'auto' && cfg.kafka.brokers.length === 0 && cfg.elasticsearch.url === '')
}

/** The embedded store's file. */
export function embeddedFile (cfg: Pick<AppConfig, 'embedded' | 'stateDir'>): string {
  return cfg.embedded.file !== '' ? cfg.embedded.file : join(cfg.stateDir, 'auditline.db')
}

/** Loads file + env, then lets each component check what a schema cannot (unknown source types, …). */
export function loadAppConfig (file: string | undefined, env: Readonly<Record<string, string | undefined>>, overrides?: Record<string, unknown>): Readonly<AppConfig> {
  const cfg = loadConfig(AppConfigSchema, { file, env, ...(overrides === undefined ? {} : { overrides }) })
  ingest.validate(cfg.ingest)
  indexer.validate(cfg.indexer)
  queryApi.validate(cfg.queryApi)
  panel.validate(cfg.panel)
  return cfg
}
