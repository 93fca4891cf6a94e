/**
 * The Elasticsearch implementation of the query API's store: typed filters → query DSL built here,
 * `search_after` on (@timestamp, event.id) for stable pagination under concurrent indexing.
 */
import type { Client } from '@elastic/elasticsearch'
import { eventIndexPattern } from '../../lib/elasticsearch.ts'
import { statsIndexPattern } from '../../lib/stats-template.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import type { EventFilter, EventPage, EventStore } from './types.ts'

type Clause = Record<string, unknown>

export function buildQuery (f: EventFilter): Clause {
  const filter: Clause[] = []
  const terms = (field: string, values: string[] | undefined): void => {
    if (values !== undefined && values.length > 0) filter.push({ terms: { [field]: values } })
  }
  if (f.from !== undefined || f.to !== undefined) {
    filter.push({ range: { '@timestamp': { ...(f.from === undefined ? {} : { gte: f.from }), ...(f.to === undefined ? {} : { lt: f.to }) } } })
  }
  terms('event.category', f.category)
  terms('event.action', f.action)
  terms('event.outcome', f.outcome)
  terms('user.name', f.user)
  terms('host.name', f.host)
  terms('auditline.class', f.eventClass)
  // An ip field's term query takes an address or a CIDR block.
  if (f.sourceIp !== undefined) filter.push({ term: { 'source.ip': f.sourceIp } })
  if (f.ticket !== undefined) filter.push({ term: { 'panel.ticket_id': f.ticket } })
  if (f.customer !== undefined) filter.push({ term: { 'panel.customer': f.customer } })
  const must: Clause[] = []
  if (f.text !== undefined) {
    // multi_match takes the text as words to match, not as query syntax.
    must.push({ multi_match: { query: f.text, fields: ['event.reason', 'db.statement', 'user.name', 'host.name', 'event.action', 'file.path', 'file.target_path', 'process.command_line', 'panel.object_id', 'panel.ticket_id'], lenient: true } })
  }
  return { bool: { filter, must } }
}

export function encodeCursor (sort: unknown[]): string {
  return Buffer.from(JSON.stringify(sort)).toString('base64url')
}

export function decodeCursor (cursor: string): Array<string | number> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'string') return v as Array<string | number>
  } catch {}
  return undefined
}

export class ElasticsearchEventStore implements EventStore {
  constructor (private readonly es: Client, private readonly indexPrefix: string) {}

  async searchEvents (filter: EventFilter, page: { size: number, order: 'asc' | 'desc', after?: string }): Promise<EventPage> {
    const after = page.after === undefined ? undefined : decodeCursor(page.after)
    const res = await this.es.search<AuditEvent>({
      // Statistics indices match the same prefix but hold no audit events (and have no event.id to sort on).
      index: `${eventIndexPattern(this.indexPrefix)},-${statsIndexPattern(this.indexPrefix)}`,
      ignore_unavailable: true,
      allow_no_indices: true,
      query: buildQuery(filter),
      size: page.size,
      sort: [{ '@timestamp': { order: page.order } }, { 'event.id': { order: page.order } }],
      track_total_hits: 10000,
      ...(after === undefined ? {} : { search_after: after })
    })
    const hits = res.hits.hits
    const total = typeof res.hits.total === 'number' ? { value: res.hits.total, relation: 'eq' } : (res.hits.total ?? { value: 0, relation: 'eq' })
    const last = hits[hits.length - 1]
    return {
      events: hits.map(h => h._source as AuditEvent),
      total: total.value,
      totalIsLowerBound: total.relation === 'gte',
      ...(last?.sort !== undefined && hits.length === page.size ? { next: encodeCursor(last.sort) } : {})
    }
  }
}
