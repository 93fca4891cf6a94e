/**
 * Starts the query API on its configured address.
 */
import { readFileSync } from 'node:fs'
import type { Ctx, Running } from '../lib/component.ts'
import { AuditError } from '../lib/errors.ts'
import { validateConfig } from '../lib/config.ts'
import { buildApp } from './app.ts'
import { QueryApiConfigSchema, type QueryApiConfig } from './config.ts'
import type { EventStore } from './store/types.ts'
import type { ApiAuditor } from './audit.ts'
import type { ExportJobs } from './exports.ts'
import { checkTenants } from './tenants.ts'

export function validate (raw: unknown): QueryApiConfig {
  const cfg = validateConfig(QueryApiConfigSchema, raw)
  checkTenants(cfg.apiKeys, cfg.tenants)
  return cfg
}

export interface QueryApiRunning extends Running {
  /** Base URL the API listens on, e.g. `http://127.0.0.1:8080` (`https://` with `queryApi.tls`). */
  url: string
}

export async function start (cfg: QueryApiConfig, ctx: Ctx, deps: { store: EventStore, auditor: ApiAuditor, exports?: ExportJobs }): Promise<QueryApiRunning> {
  const https = cfg.tls === undefined ? undefined : { cert: readTlsFile('queryApi.tls.certFile', cfg.tls.certFile), key: readTlsFile('queryApi.tls.keyFile', cfg.tls.keyFile) }
  const app = buildApp(cfg, { store: deps.store, auditor: deps.auditor, log: ctx.log, ...(https === undefined ? {} : { https }), ...(deps.exports === undefined ? {} : { exports: deps.exports }) })
  await app.listen({ host: cfg.host, port: cfg.port })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.port
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host
  return {
    url: `${https === undefined ? 'http' : 'https'}://${host}:${port}`,
    async close () {
      await app.close()
      // A running export finishes (its bundle is complete or absent) before the store's client is closed.
      await deps.exports?.idle()
    }
  }
}

/** Reads a certificate or key file named in the configuration; the error names the field and path, never the content. */
function readTlsFile (field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`])
  }
}
