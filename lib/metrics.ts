/**
 * The Prometheus endpoint each long-running command exposes (`GET /metrics`, `GET /healthz`).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Registry, collectDefaultMetrics } from 'prom-client'

export function createRegistry (): Registry {
  const reg = new Registry()
  collectDefaultMetrics({ register: reg, prefix: 'auditline_' })
  return reg
}

export async function serveMetrics (reg: Registry, host: string, port: number): Promise<{ url: string, close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
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
