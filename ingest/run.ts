/**
 * Starts one file collector per configured source, all sharing one idempotent producer.
 */
import { hostname } from 'node:os'
import type { Producer } from 'kafkajs'
import type { Ctx, Running } from '../lib/component.ts'
import { topicName } from '../lib/topics.ts'
import { validateConfig } from '../lib/config.ts'
import { AuditError } from '../lib/errors.ts'
import { IngestConfigSchema, type IngestConfig } from './config.ts'
import { handlerFor } from './sources.ts'
import { startFileCollector, type RunningCollector } from './common/collector.ts'

export function validate (raw: unknown): IngestConfig {
  const cfg = validateConfig(IngestConfigSchema, raw)
  const names = new Set<string>()
  for (const s of cfg.sources) {
    if (names.has(s.name)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`ingest.sources: duplicate source name ${s.name}`])
    names.add(s.name)
    handlerFor(s.type, s.format, s.options) // throws on an unknown type, format or option
  }
  return cfg
}

export interface IngestRunning extends Running {
  /** Resolves when every source has acknowledged everything written so far. */
  drained (): Promise<void>
}

export async function start (cfg: IngestConfig, ctx: Ctx & { producer: Pick<Producer, 'sendBatch'>, topicPrefix: string }): Promise<IngestRunning> {
  const host = cfg.host === '' ? hostname() : cfg.host
  // Started side by side: a collector that is already reading must not delay the start of the next one.
  const started = await Promise.allSettled(cfg.sources.map(async s => {
    const { topic, ...handler } = handlerFor(s.type, s.format, s.options)
    return await startFileCollector({
      ...handler,
      source: s.name,
      host,
      paths: s.paths,
      checkpointDir: cfg.checkpointDir,
      topic: topicName(ctx.topicPrefix, topic),
      deadletterTopic: topicName(ctx.topicPrefix, 'deadletter'),
      maxLineBytes: cfg.maxLineBytes,
      batchLines: cfg.batchLines,
      batchBytes: cfg.batchBytes,
      pollMs: cfg.pollMs,
      rotatedIdleMs: cfg.rotatedIdleMs
    }, { log: ctx.log, producer: ctx.producer, metrics: ctx.metrics })
  }))
  const running: RunningCollector[] = started.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = started.find(r => r.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(running.map(r => r.close()))
    throw failed.reason
  }
  return {
    async close () { await Promise.all(running.map(r => r.close())) },
    async drained () { await Promise.all(running.map(r => r.drained())) }
  }
}
