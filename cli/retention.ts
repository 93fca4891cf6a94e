/** What a retention run needs besides its store and publisher, from the app config (both modes). */
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Ctx } from '../lib/component.ts'
import type { RetentionDeps, RetentionStore } from '../indexer/retention/run.ts'
import type { AppConfig } from './config.ts'

export function retentionDeps (cfg: AppConfig, ctx: Ctx, store: RetentionStore, now: () => Date): RetentionDeps {
  return {
    store,
    indexPrefix: cfg.elasticsearch.indexPrefix,
    host: cfg.retention.host !== '' ? cfg.retention.host : cfg.ingest.host !== '' ? cfg.ingest.host : hostname(),
    stateDir: cfg.retention.stateDir !== '' ? cfg.retention.stateDir : join(cfg.stateDir, 'retention'),
    now,
    log: ctx.log,
    metrics: ctx.metrics,
    signal: ctx.signal
  }
}
