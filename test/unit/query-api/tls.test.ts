import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { start, validate, type QueryApiRunning } from '../../../query-api/run.ts'
import { createLogger } from '../../../lib/log.ts'
import { isAuditError } from '../../../lib/errors.ts'
import type { EventStore } from '../../../query-api/store/types.ts'
import type { ApiAuditor } from '../../../query-api/audit.ts'

const store: EventStore = {
  searchEvents: async () => ({ events: [], total: 0, totalIsLowerBound: false }),
  countEvents: async () => ({ buckets: [], total: 0, other: 0 }),
  listSites: async () => ({ sites: [], truncated: false }),
  siteStats: async () => []
}
const auditor: ApiAuditor = { record: async () => {}, close: async () => {} }
const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }

function get (url: string, ca: string): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString('utf8') })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject).end()
  })
}

describe('query API over TLS (queryApi.tls)', () => {
  let dir: string
  let running: QueryApiRunning | undefined
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-api-tls-'))
    // A self-signed certificate for 127.0.0.1, made by the openssl CLI (Debian's openssl package).
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'api.key'), '-out', join(dir, 'api.pem')], { stdio: 'ignore' })
  })
  after(async () => {
    await running?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves HTTPS with the configured certificate and reports an https:// URL', async () => {
    const cfg = validate({ host: '127.0.0.1', port: 0, tls: { certFile: join(dir, 'api.pem'), keyFile: join(dir, 'api.key') } })
    running = await start(cfg, ctx, { store, auditor })
    assert.match(running.url, /^https:\/\/127\.0\.0\.1:\d+$/)
    const res = await get(`${running.url}/docs/openapi.json`, await readFile(join(dir, 'api.pem'), 'utf8'))
    assert.equal(res.status, 200)
    assert.match(res.body, /"openapi"/)
  })

  it('refuses to start when the key file cannot be read, naming the field', async () => {
    const cfg = validate({ host: '127.0.0.1', port: 0, tls: { certFile: join(dir, 'api.pem'), keyFile: join(dir, 'missing.key') } })
    await assert.rejects(start(cfg, ctx, { store, auditor }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /queryApi\.tls\.keyFile/.test((err as Error).message))
  })
})
