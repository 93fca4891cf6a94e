/**
 * The Prometheus endpoint each long-running command exposes: `GET /metrics`, `GET /healthz` (liveness: the
 * process answers) and `GET /readyz` (readiness: 200 while the stage runs with its Kafka/Elasticsearch clients up
 * and is not shutting down, 503 otherwise, so that a load balancer or Kubernetes stops sending work first).
 * The clients' state comes from their own events (`watchKafka`, `watchElasticsearch`) into the process's
 * `Readiness` (`readinessOf(ctx.metrics)`), so that no component needs more than the `ctx` it already has.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Client } from '@elastic/elasticsearch'
import type { Consumer, Producer } from 'kafkajs'
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client'

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

/** A client's state changing; `reason` says why it is down ('' when up). */
export interface ReadinessChange {
  client: string
  up: boolean
  reason: string
}

interface ClientState {
  up: boolean
  reason: string
  /** Asks the server again while down (a request whose outcome the client's events report). */
  recheck?: () => Promise<unknown>
  checking?: Promise<void>
}

/**
 * The state of each Kafka/Elasticsearch client of a stage, by name (`indexer.consumer`): ready when every one is
 * up. Also the gauge `auditline_client_ready{client}` (1 up, 0 down).
 */
export class Readiness {
  private readonly clients = new Map<string, ClientState>()
  private readonly listeners: Array<(change: ReadinessChange) => void> = []
  private readonly gauge: Gauge

  constructor (reg: Registry) {
    this.gauge = new Gauge({ name: 'auditline_client_ready', help: '1 while the Kafka/Elasticsearch client is up, 0 while down (/readyz answers 503)', labelNames: ['client'], registers: [reg] })
  }

  /**
   * Adds a client (again: a stage restarted in the same process), down with `reason` until it reports. With
   * `recheck`, the server is asked at once and again whenever `ready()` finds the client down.
   */
  track (client: string, reason: string, recheck?: () => Promise<unknown>): void {
    this.clients.set(client, { up: false, reason, ...(recheck === undefined ? {} : { recheck }) })
    this.gauge.set({ client }, 0)
    if (recheck !== undefined) this.startRecheck(client)
  }

  /** Records what a client's event says; listeners hear changes only. */
  report (client: string, up: boolean, reason = ''): void {
    const c = this.clients.get(client)
    const why = up ? '' : reason
    if (c === undefined || (c.up === up && c.reason === why)) return
    c.up = up
    c.reason = why
    this.gauge.set({ client }, up ? 1 : 0)
    for (const l of this.listeners) l({ client, up, reason: why })
  }

  /**
   * True when every client is up. Starts the recheck of each client that is down and has one, without waiting for
   * it: /readyz answers at once, and the next probe sees the outcome. Without rechecks a client that is only
   * asked on demand (the query API's Elasticsearch) would stay down once the load balancer stopped sending work.
   */
  ready (): boolean {
    let ok = true
    for (const [client, c] of this.clients) {
      if (c.up) continue
      ok = false
      this.startRecheck(client)
    }
    return ok
  }

  onChange (listener: (change: ReadinessChange) => void): void {
    this.listeners.push(listener)
  }

  private startRecheck (client: string): void {
    const c = this.clients.get(client)
    if (c?.recheck === undefined || c.checking !== undefined) return
    // The outcome arrives through the client's events; a failed recheck has been reported there already.
    c.checking = c.recheck().then(() => {}, () => {}).finally(() => { c.checking = undefined })
  }
}

const byRegistry = new WeakMap<Registry, Readiness>()

/** The readiness of the process whose metrics registry is `reg` (`ctx.metrics`); made on first use. */
export function readinessOf (reg: Registry): Readiness {
  let r = byRegistry.get(reg)
  if (r === undefined) {
    r = new Readiness(reg)
    byRegistry.set(reg, r)
  }
  return r
}

function isConsumer (client: Producer | Consumer): client is Consumer {
  return 'CRASH' in client.events
}

/**
 * Follows a kafkajs producer or consumer through its instrumentation events: up on CONNECT (and a consumer's
 * GROUP_JOIN), down on DISCONNECT, on a consumer's STOP and CRASH. A consumer that crashed with a retriable error
 * restarts by itself and reports CONNECT again; one that does not restart stays down. kafkajs reports no broker
 * loss of a connected producer (its sends fail and retry), so a producer is down only once disconnected.
 * Call it before `connect()`: the client is down until its first CONNECT.
 */
export function watchKafka (readiness: Readiness, client: string, kafka: Producer | Consumer): void {
  readiness.track(client, 'not connected yet')
  const up = (): void => { readiness.report(client, true) }
  if (isConsumer(kafka)) {
    kafka.on(kafka.events.CONNECT, up)
    kafka.on(kafka.events.GROUP_JOIN, up)
    kafka.on(kafka.events.DISCONNECT, () => { readiness.report(client, false, 'disconnected') })
    kafka.on(kafka.events.STOP, () => { readiness.report(client, false, 'stopped') })
    kafka.on(kafka.events.CRASH, e => {
      const err = e.payload.error
      readiness.report(client, false, `crashed (${err.name}: ${err.message}), ${e.payload.restart ? 'restarting' : 'not restarting'}`)
    })
  } else {
    kafka.on(kafka.events.CONNECT, up)
    kafka.on(kafka.events.DISCONNECT, () => { readiness.report(client, false, 'disconnected') })
  }
}

/** HTTP answers that say the cluster cannot serve this client: bad credentials, or a proxy/cluster unavailable. */
const ES_DOWN_STATUS = new Set([401, 502, 503, 504])
const ES_DOWN_ERRORS = new Set(['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError'])

/**
 * Follows an Elasticsearch client through its responses: down on a request without an answer (connection refused
 * or reset, timeout) and on HTTP 401/502/503/504, up on any other answer (a 404 or 409 is Elasticsearch
 * answering). Aborted requests and serialization errors say nothing about the connection. The client has no
 * connection of its own to watch, so it is asked (`HEAD /`: the integ-test node's 405 counts as an answer too) at
 * once and, while down, at every readiness check.
 */
export function watchElasticsearch (readiness: Readiness, client: string, es: Client): void {
  es.diagnostic.on('response', err => {
    if (err === null) { readiness.report(client, true); return }
    if (ES_DOWN_ERRORS.has(err.name)) { readiness.report(client, false, `${err.name}: ${err.message}`); return }
    if (err.name !== 'ResponseError') return
    const status = (err as { statusCode?: number }).statusCode
    readiness.report(client, status === undefined || !ES_DOWN_STATUS.has(status), `HTTP ${status ?? '?'}`)
  })
  readiness.track(client, 'not checked yet', () => es.ping())
}
