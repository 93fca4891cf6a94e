/**
 * Query API integration helpers: seed audit events and statistics documents straight into the real
 * Elasticsearch node (the shapes the indexer writes, in the indices it writes them to, under the project's
 * templates), and build the API on the real store with a recording auditor.
 */
import { Writable } from 'node:stream'
import { Client } from '@elastic/elasticsearch'
import { ECS_VERSION, SCHEMA_VERSION, assertEvent, eventId, sealEvent, type AuditEvent } from '../../lib/ecs.ts'
import { ensureTemplates, indexName } from '../../lib/elasticsearch.ts'
import { sealsIndexName } from '../../lib/seal-template.ts'
import { createLogger } from '../../lib/log.ts'
import type { StatsDocument } from '../../anonymizer/stats/record.ts'
import { buildApp } from '../../query-api/app.ts'
import { validate } from '../../query-api/run.ts'
import { ElasticsearchEventStore } from '../../query-api/store/elasticsearch.ts'
import type { ApiAuditInput, ApiAuditor } from '../../query-api/audit.ts'

export function esClient (url: string): Client {
  return new Client({ node: url, requestTimeout: 30_000 })
}

/** Installs the templates and writes `docs` where the indexer would (`<prefix>-stats-<day>`, `_id` = doc id). */
export async function seedStats (es: Client, prefix: string, docs: readonly StatsDocument[]): Promise<void> {
  await ensureTemplates(es, { indexPrefix: prefix, replicas: 0 })
  const operations = docs.flatMap(d => [{ index: { _index: indexName(prefix, 'stats', d.period.start), _id: d.id } }, d])
  const res = await es.bulk({ operations, refresh: true })
  if (res.errors) throw new Error(`seeding statistics failed: ${JSON.stringify(res.items.find(i => i.index?.error !== undefined))}`)
}

export interface SeedEvent {
  at: string
  action: string
  user: string
  host: string
  eventClass?: string
  outcome?: 'success' | 'failure'
  ip?: string
  category?: string[]
  extra?: Partial<AuditEvent>
}

let seq = 0
/** A valid, hashed audit event (lib/ecs.ts schema) of a collector stream on `host`. */
export function auditEvent (s: SeedEvent): AuditEvent {
  const cls = s.eventClass ?? 'sshd'
  const sequence = ++seq
  const e: AuditEvent = {
    '@timestamp': new Date(s.at).toISOString(),
    ecs: { version: ECS_VERSION },
    event: {
      id: eventId(cls, s.host, 'seed', sequence),
      kind: 'event',
      category: s.category ?? ['authentication'],
      type: ['start'],
      action: s.action,
      outcome: s.outcome ?? 'success',
      dataset: cls,
      sequence
    },
    auditline: { schema: SCHEMA_VERSION, stream: `${s.host}/var/log/${cls}.log`, class: cls },
    host: { name: s.host },
    user: { name: s.user },
    ...(s.ip === undefined ? {} : { source: { ip: s.ip } }),
    ...s.extra
  }
  const sealed = sealEvent(e)
  assertEvent(sealed)
  return sealed
}

/** Writes events into their daily class indices, as the indexer does. */
export async function seedEvents (es: Client, prefix: string, events: readonly AuditEvent[]): Promise<void> {
  await ensureTemplates(es, { indexPrefix: prefix, replicas: 0 })
  const operations = events.flatMap(e => [{ index: { _index: indexName(prefix, e.auditline.class, e['@timestamp']), _id: e.event.id } }, e])
  const res = await es.bulk({ operations, refresh: true })
  if (res.errors) throw new Error(`seeding events failed: ${JSON.stringify(res.items.find(i => i.index?.error !== undefined))}`)
}

export async function deleteIndices (es: Client, prefix: string): Promise<void> {
  await es.indices.delete({ index: `${prefix}-*,${sealsIndexName(prefix)}`, ignore_unavailable: true, allow_no_indices: true }).catch(() => {})
  for (const name of [`${prefix}-events`, `${prefix}-stats`, sealsIndexName(prefix)]) await es.indices.deleteIndexTemplate({ name }).catch(() => {})
}

export function recordingAuditor (): ApiAuditor & { recorded: ApiAuditInput[] } {
  const recorded: ApiAuditInput[] = []
  return { recorded, record: async (i) => { recorded.push(i) }, close: async () => {} }
}

/** The API on the real Elasticsearch store; `raw` is the `queryApi` config section. */
export function apiOnElasticsearch (es: Client, prefix: string, raw: Record<string, unknown>, auditor: ApiAuditor): ReturnType<typeof buildApp> {
  const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  return buildApp(validate({ host: '127.0.0.1', port: 0, ...raw }), { store: new ElasticsearchEventStore(es, prefix), auditor, log })
}

export const SEARCH_USERS = ['anna', 'bob', 'carol', 'dave']
export const SEARCH_HOSTS = ['web01', 'web02', 'db01']
export const SEARCH_ACTIONS = ['ssh_login', 'ftp_upload', 'db_drop_database']

/** The events of the search tests (both stores): one a minute from `base`, users/hosts/actions in turn, v4 and v6 sources. */
export function searchSeed (n: number, base: number): AuditEvent[] {
  return Array.from({ length: n }, (_, i) => auditEvent({
    at: new Date(base + i * 60_000).toISOString(),
    action: SEARCH_ACTIONS[i % SEARCH_ACTIONS.length] as string,
    user: SEARCH_USERS[i % SEARCH_USERS.length] as string,
    host: SEARCH_HOSTS[i % SEARCH_HOSTS.length] as string,
    outcome: i % 5 === 0 ? 'failure' : 'success',
    ip: i % 2 === 0 ? `192.0.2.${i % 200}` : `2001:db8::${(i % 200).toString(16)}`
  }))
}
