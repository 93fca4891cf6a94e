/**
 * The Prometheus endpoint each long-running command exposes: `GET /metrics`, `GET /healthz` (liveness: the
 * process answers) and `GET /readyz` (readiness: 200 while the stage is started — its Kafka/Elasticsearch clients
 * connected — and not shutting down, 503 otherwise, so that a load balancer or Kubernetes stops sending work first).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Registry, collectDefaultMetrics } from 'prom-client'

export function createRegistry (): Registry {
  const reg = new Registry()
  collectDefaultMetrics({ register: reg, prefix: 'auditline_' })
  return reg
}

export interface ServeMetricsOptions {
  /** Readiness of the stage behind `/readyz`; absent = always ready. Example: `() => !stopping`. */
  ready?: () => boolean | Promise<boolean>
}

export async function serveMetrics (reg: Registry, host: string, port: number, opts: ServeMetricsOptions = {}): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/readyz') {
      Promise.resolve(opts.ready === undefined ? true : opts.ready()).then(ok => {
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        res.end(ok ? '{"status":"ready"}' : '{"status":"not ready"}')
      }, () => { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"status":"not ready"}') })
      return
    }
    if (req.url === '/metrics') {
      reg.metrics().then(text => {
        res.writeHead(200, { 'content-type': reg.contentType })
        res.end(text)
      }, err => { res.writeHead(500); res.end(String(err)) })
      return
    }
    if (req.url === '/healthz') { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"ok"}'); return }
    res.writeHead(404); res.end()
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, host, resolve) })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}/metrics`,
    close: () => new Promise(resolve => { server.close(() => resolve()) })
  }
}
