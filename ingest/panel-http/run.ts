/**
 * Starts the control-panel HTTP intake: opens each client's sequence journal, then listens.
 * `close()` stops accepting, lets in-flight requests finish (each waits for its Kafka acknowledgement),
 * then closes the journals. The producer belongs to the caller (cli/pipeline.ts), which disconnects it.
 */
import type { Producer } from 'kafkajs'
import type { Ctx, Running } from '../../lib/component.ts'
import { validateConfig } from '../../lib/config.ts'
import { AuditError } from '../../lib/errors.ts'
import { topicName } from '../../lib/topics.ts'
import { PanelConfigSchema, type PanelConfig } from './config.ts'
import { SequenceJournal } from '../../lib/sequence-journal.ts'
import { buildPanelApp } from './app.ts'

/** Pure: schema, defaults, and what a schema cannot say (unique client ids). Throws AUD_ERR_CONFIG_INVALID. */
export function validate (raw: unknown): PanelConfig {
  const cfg = validateConfig(PanelConfigSchema, raw)
  const ids = new Set<string>()
  for (const c of cfg.clients) {
    if (ids.has(c.id)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`panel.clients: duplicate client id ${c.id}`])
    ids.add(c.id)
  }
  return cfg
}

export interface PanelRunning extends Running {
  /** Base URL the intake listens on, e.g. `http://127.0.0.1:8081`. */
  url: string
}

export async function openJournals (cfg: PanelConfig): Promise<Map<string, SequenceJournal>> {
  const journals = new Map<string, SequenceJournal>()
  try {
    for (const c of cfg.clients) journals.set(c.id, await SequenceJournal.open(cfg.stateDir, c.id, cfg.idempotencyWindow))
  } catch (err) {
    await Promise.all([...journals.values()].map(j => j.close()))
    throw err
  }
  return journals
}

export async function start (cfg: PanelConfig, ctx: Ctx & { producer: Pick<Producer, 'send'>, topicPrefix: string }): Promise<PanelRunning> {
  const journals = await openJournals(cfg)
  const topic = topicName(ctx.topicPrefix, 'panel')
  const app = buildPanelApp(cfg, { log: ctx.log, producer: ctx.producer, topic, journals, metrics: ctx.metrics })
  try {
    await app.listen({ host: cfg.host, port: cfg.port })
  } catch (err) {
    await app.close()
    await Promise.all([...journals.values()].map(j => j.close()))
    throw err
  }
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.port
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host
  const url = `http://${host}:${port}`
  app.log.info({ address: url, topic, clients: cfg.clients.length, requireTicketForStaff: cfg.requireTicketForStaff }, 'Panel intake listening.')
  return {
    url,
    async close () {
      await app.close()
      await Promise.all([...journals.values()].map(j => j.close()))
    }
  }
}
