/**
 * Query latency (issue #6): p50/p99 of typical audit searches through the query API (HTTP, auth, typed
 * filters → Elasticsearch) over N seeded events on the local node, next to the same queries sent to
 * Elasticsearch directly (the floor the API adds to). Prints figures only; never asserts.
 *
 *   npm run bench -- query [--events 1000000] [--runs 200]
 */
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { Client } from '@elastic/elasticsearch'
import { ECS_VERSION, SCHEMA_VERSION, eventId, sealEvent, type AuditEvent } from '../lib/ecs.ts'
import { ensureTemplates, indexName } from '../lib/elasticsearch.ts'
import { createLogger } from '../lib/log.ts'
import { createKey } from '../lib/apikey.ts'
import { buildApp } from '../query-api/app.ts'
import { validate } from '../query-api/run.ts'
import { ElasticsearchEventStore, buildQuery } from '../query-api/store/elasticsearch.ts'
import { toFilter, type EventsQueryT } from '../query-api/routes/events.ts'
import type { ApiAuditor } from '../query-api/audit.ts'
import type { EventStore } from '../query-api/store/types.ts'

export function arg (args: string[], name: string, def: number): number {
  const i = args.indexOf(name)
  const v = i >= 0 ? Number(args[i + 1]) : def
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`)
  return v
}

const USERS = Array.from({ length: 500 }, (_, i) => `user${i}`)
const HOSTS = Array.from({ length: 60 }, (_, i) => `backend-${i}`)
const ACTIONS = ['ssh_login', 'ssh_disconnect', 'ftp_upload', 'ftp_delete', 'db_create_database', 'db_drop_database', 'panel_update', 'sudo_command']

/** Bench event `i` (deterministic): at i/1,000,000 of `span` after `start`, 500 users, 60 hosts, 8 actions, source 10.x.y.z from i. */
export function event (i: number, start: number, span: number): AuditEvent {
  const e: AuditEvent = {
    '@timestamp': new Date(start + Math.floor((i / 1_000_000) * span) + (i % 1000)).toISOString(),
    ecs: { version: ECS_VERSION },
    event: { id: eventId('bench', i), kind: 'event', category: ['authentication'], type: ['start'], action: ACTIONS[i % ACTIONS.length] as string, outcome: i % 7 === 0 ? 'failure' : 'success', dataset: 'bench', sequence: i },
    auditline: { schema: SCHEMA_VERSION, stream: `${HOSTS[i % HOSTS.length] as string}/auth`, class: 'ssh' },
    host: { name: HOSTS[i % HOSTS.length] as string },
    user: { name: USERS[(i * 7) % USERS.length] as string },
    source: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 60000) }
  }
  return sealEvent(e)
}

export function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}

/** Where and over how long the bench events lie: 30 days from 2026-10-01. */
export const SEED_START = Date.UTC(2026, 9, 1)
export const SEED_SPAN = 30 * 86_400_000

/** The typical audit searches measured: name → query string (`&__page2`: the page after the first). */
export const QUERIES: ReadonlyArray<[string, string]> = [
  ['one user, newest 50', 'user.name=user42'],
  ['user + failures', 'user.name=user42&event.outcome=failure'],
  ['one host, one week', `host.name=backend-7&from=${new Date(SEED_START + 7 * 86_400_000).toISOString()}&to=${new Date(SEED_START + 14 * 86_400_000).toISOString()}`],
  ['action across all', 'event.action=db_drop_database'],
  ['source CIDR /16', 'source.ip=10.3.0.0/16'],
  ['free text', 'q=user42'],
  ['page 2 (search_after)', 'user.name=user42&__page2']
]

/** Events 0..n-1 in batches of 10k, and how many were made up to each batch's end. */
export function * eventBatches (n: number): Generator<{ events: AuditEvent[], done: number }> {
  for (let i = 0; i < n; i += 10_000) {
    const end = Math.min(n, i + 10_000)
    yield { events: Array.from({ length: end - i }, (_, k) => event(i + k, SEED_START, SEED_SPAN)), done: end }
  }
}

/**
 * Seeds events 0..n-1 into `<prefix>-*` (templates must exist): bulk in 10k batches (`onBatch` after each), one
 * refresh and a force-merge at the end.
 */
export async function seedElasticsearch (es: Client, prefix: string, n: number, onBatch?: (done: number) => void): Promise<void> {
  for (const { events, done } of eventBatches(n)) {
    const ops = events.flatMap(e => [{ index: { _index: indexName(prefix, 'ssh', e['@timestamp']), _id: e.event.id } }, e])
    const res = await es.bulk({ operations: ops, refresh: false })
    if (res.errors) throw new Error('seeding failed')
    onBatch?.(done)
  }
  await es.indices.refresh({ index: `${prefix}-*` })
  await es.indices.forcemerge({ index: `${prefix}-*`, max_num_segments: 1 }).catch(() => {})
}

export interface BenchApi {
  /** The query string of a QUERIES entry against this API (`&__page2` becomes the first page's cursor), and the first page's total. */
  resolve (qsRaw: string): Promise<{ qs: string, total: number }>
  /** One search through HTTP: its wall time in ms; throws unless the answer is 200. */
  time (qs: string): Promise<number>
  close (): Promise<void>
}

/** The query API over `store` on a free loopback port, one `security` key, audit records dropped (the search is measured). */
export async function benchApi (store: EventStore): Promise<BenchApi> {
  const key = await createKey()
  const auditor: ApiAuditor = { record: async () => {}, close: async () => {} }
  const app = buildApp(validate({ port: 0, apiKeys: [{ id: key.id, hash: key.hash, roles: ['security'], owner: 'bench' }] }), {
    store, auditor, log: createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const addr = app.server.address()
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`
  const headers = { authorization: `ApiKey ${key.key}` }
  return {
    async resolve (qsRaw) {
      const qs = qsRaw.replace('&__page2', '')
      const first = await (await fetch(`${base}/v1/events?case=B&size=50&${qs}`, { headers })).json() as { total: number, next?: string }
      return { qs: qsRaw.endsWith('&__page2') && first.next !== undefined ? `${qs}&after=${first.next}` : qs, total: first.total }
    },
    async time (qs) {
      const t = performance.now()
      const res = await fetch(`${base}/v1/events?case=B&size=50&${qs}`, { headers })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`${qs}: HTTP ${res.status}`)
      return performance.now() - t
    },
    close: () => app.close()
  }
}

export async function benchQuery (args: string[]): Promise<void> {
  const n = arg(args, '--events', 1_000_000)
  const runs = arg(args, '--runs', 200)
  let url = process.env.ELASTICSEARCH_URL
  if (url === undefined || url === '') {
    const { up } = await import('../deploy/local/stack.ts')
    url = (await up()).elasticsearch.url
  }
  const es = new Client({ node: url, requestTimeout: 120_000 })
  const prefix = `benchq${randomBytes(3).toString('hex')}`
  await ensureTemplates(es, { indexPrefix: prefix, replicas: 0 })
  const t0 = performance.now()
  try {
    // Seeding is not what is measured.
    await seedElasticsearch(es, prefix, n)
    process.stdout.write(`\nQuery latency over ${n.toLocaleString('en-US')} events (${Math.round((performance.now() - t0) / 1000)} s to seed), ${runs} runs per query, local Elasticsearch node\n`)

    const api = await benchApi(new ElasticsearchEventStore(es, prefix))
    process.stdout.write(`${'query'.padEnd(26)} ${'API p50'.padStart(9)} ${'API p99'.padStart(9)} ${'ES p50'.padStart(9)} ${'ES p99'.padStart(9)}\n`)
    for (const [name, qsRaw] of QUERIES) {
      const { qs } = await api.resolve(qsRaw)
      const viaApi: number[] = []
      const direct: number[] = []
      const params = Object.fromEntries(new URLSearchParams(qs)) as Record<string, string>
      const typed: EventsQueryT = { size: 50, order: 'desc', ...(params as Partial<EventsQueryT>), ...(params['user.name'] === undefined ? {} : { 'user.name': [params['user.name']] }), ...(params['host.name'] === undefined ? {} : { 'host.name': [params['host.name']] }), ...(params['event.action'] === undefined ? {} : { 'event.action': [params['event.action']] }), ...(params['event.outcome'] === undefined ? {} : { 'event.outcome': [params['event.outcome'] as 'failure'] }) }
      const query = buildQuery(toFilter(typed, 366))
      for (let r = 0; r < runs; r++) {
        viaApi.push(await api.time(qs))
        const t = performance.now()
        await es.search({ index: `${prefix}-*`, query, size: 50, sort: [{ '@timestamp': 'desc' }, { 'event.id': 'desc' }], track_total_hits: 10000 })
        direct.push(performance.now() - t)
      }
      const f = (x: number): string => `${x.toFixed(1)} ms`.padStart(9)
      process.stdout.write(`${name.padEnd(26)} ${f(pct(viaApi, 50))} ${f(pct(viaApi, 99))} ${f(pct(direct, 50))} ${f(pct(direct, 99))}\n`)
    }
    await api.close()
  } finally {
    await es.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true }).catch(() => {})
    await es.close()
  }
}
