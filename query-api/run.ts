/**
 * Starts the query API on its configured address.
 */
import type { Ctx, Running } from '../lib/component.ts'
import { validateConfig } from '../lib/config.ts'
import { buildApp } from './app.ts'
import { QueryApiConfigSchema, type QueryApiConfig } from './config.ts'
import type { EventStore } from './store/types.ts'
import type { ApiAuditor } from './audit.ts'
import { checkTenants } from './tenants.ts'

export function validate (raw: unknown): QueryApiConfig {
  const cfg = validateConfig(QueryApiConfigSchema, raw)
  checkTenants(cfg.apiKeys, cfg.tenants)
  return cfg
}

export interface QueryApiRunning extends Running {
  /** Base URL the API listens on, e.g. `http://127.0.0.1:8080`. */
  url: string
}

export async function start (cfg: QueryApiConfig, ctx: Ctx, deps: { store: EventStore, auditor: ApiAuditor }): Promise<QueryApiRunning> {
  const app = buildApp(cfg, { store: deps.store, auditor: deps.auditor, log: ctx.log })
  await app.listen({ host: cfg.host, port: cfg.port })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.port
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host
  return {
    url: `http://${host}:${port}`,
    async close () { await app.close() }
  }
}
