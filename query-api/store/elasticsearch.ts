/**
 * The Elasticsearch implementation of the query API's store: typed filters → query DSL built here,
 * `search_after` on (@timestamp, event.id) for stable pagination under concurrent indexing.
 */
import { errors, type Client } from '@elastic/elasticsearch'
import { AuditError } from '../../lib/errors.ts'
import { READ_RETRY_MS, eventIndexPattern, isTransientSearchError, retryTransient } from '../../lib/elasticsearch.ts'
import { statsIndexPattern } from '../../lib/stats-template.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import type { Granularity, StatsDocument } from '../../anonymizer/stats/record.ts'
import type { CountBy, EventCounts, EventFilter, EventPage, EventStore, SiteScope, SiteSummary } from './types.ts'

type Clause = Record<string, unknown>

/** Fields that hold a session or connection id (`session` filter). */
const SESSION_FIELDS = ['ssh.session_id', 'ftp.session_id', 'db.connection_id'] as const

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
  if (f.stream !== undefined) filter.push({ term: { 'auditline.stream': f.stream } })
  if (f.session !== undefined) {
    const id = f.session
    filter.push({ bool: { should: SESSION_FIELDS.map(field => ({ term: { [field]: id } })), minimum_should_match: 1 } })
  }
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

/** The statistics documents a scope covers: exact names and `*.domain` suffixes, compared case-insensitively. */
export function siteScopeQuery (scope: SiteScope): Clause {
  if (scope.all) return { match_all: {} }
  const should: Clause[] = []
  for (const site of scope.exact) should.push({ term: { site: { value: site, case_insensitive: true } } })
  // The suffix comes from the configuration (a validated host name), never from a request; `*` and `?` are
  // not in the allowed alphabet, and the backslash escape keeps it that way if the pattern ever changes.
  for (const suffix of scope.suffixes) should.push({ wildcard: { site: { value: '*' + suffix.replace(/[\\*?]/g, c => '\\' + c), case_insensitive: true } } })
  // No sites at all: match nothing (an empty `should` in a filter context would match everything).
  return should.length === 0 ? { bool: { must_not: { match_all: {} } } } : { bool: { should, minimum_should_match: 1 } }
}

export function countAggregation (by: CountBy, opts: { size: number, from?: string, to?: string }): Clause {
  if (by === 'day') {
    return {
      date_histogram: {
        field: '@timestamp',
        calendar_interval: 'day',
        time_zone: 'UTC',
        format: 'yyyy-MM-dd',
        min_doc_count: 0,
        // `to` is exclusive; the bounds fill empty days so that a chart has every day of the range.
        ...(opts.from !== undefined && opts.to !== undefined ? { extended_bounds: { min: Date.parse(opts.from), max: Date.parse(opts.to) - 1 } } : {})
      }
    }
  }
  return { terms: { field: by, size: opts.size, order: [{ _count: 'desc' }, { _key: 'asc' }] } }
}

interface Bucket { key: string | number, key_as_string?: string, doc_count: number }

/**
 * Runs a search with `retryTransient`; what still fails transiently after the last try becomes
 * AUD_ERR_API_STORE_UNAVAILABLE (503, retry later), so a client never takes a passing outage for a bug (500).
 */
export async function searchWithRetry<T> (run: () => Promise<T>, waits: readonly number[] = READ_RETRY_MS): Promise<T> {
  try {
    return await retryTransient(run, waits)
  } catch (err) {
    if (!isTransientSearchError(err)) throw err
    // The answer names only the kind of failure (the store's own message may quote the query).
    throw new AuditError('AUD_ERR_API_STORE_UNAVAILABLE', [err instanceof errors.ResponseError ? `Elasticsearch answered ${err.statusCode ?? '?'}` : (err as Error).name], { cause: err })
  }
}

export class ElasticsearchEventStore implements EventStore {
  constructor (private readonly es: Client, private readonly indexPrefix: string) {}

  private get eventIndices (): string {
    // Statistics indices match the same prefix but hold no audit events.
    return `${eventIndexPattern(this.indexPrefix)},-${statsIndexPattern(this.indexPrefix)}`
  }

  async countEvents (filter: EventFilter, by: CountBy, opts: { size: number, from?: string, to?: string }): Promise<EventCounts> {
    const res = await searchWithRetry(async () => await this.es.search({
      index: this.eventIndices,
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      query: buildQuery(filter),
      size: 0,
      track_total_hits: true,
      aggs: { by: countAggregation(by, opts) }
    }))
    const total = typeof res.hits.total === 'number' ? res.hits.total : (res.hits.total?.value ?? 0)
    const agg = res.aggregations?.by as { buckets?: Bucket[] } | undefined
    const buckets = (agg?.buckets ?? []).map(b => ({ key: b.key_as_string ?? String(b.key), count: b.doc_count }))
    return { buckets, total, other: total - buckets.reduce((n, b) => n + b.count, 0) }
  }

  async listSites (scope: SiteScope, limit: number): Promise<{ sites: SiteSummary[], truncated: boolean }> {
    const res = await searchWithRetry(async () => await this.es.search({
      index: statsIndexPattern(this.indexPrefix),
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      size: 0,
      query: siteScopeQuery(scope),
      aggs: {
        sites: {
          terms: { field: 'site', size: limit + 1, order: { _key: 'asc' } },
          aggs: {
            day: {
              filter: { term: { granularity: 'day' } },
              aggs: { last: { top_hits: { size: 1, sort: [{ '@timestamp': { order: 'desc' } }], _source: ['@timestamp', 'partial', 'hits', 'pageviews', 'visits', 'visitors'] } } }
            }
          }
        }
      }
    }))
    type Last = Pick<StatsDocument, '@timestamp' | 'partial' | 'hits' | 'pageviews' | 'visits' | 'visitors'>
    const agg = res.aggregations?.sites as { buckets?: Array<Bucket & { day?: { last?: { hits?: { hits?: Array<{ _source?: Last }> } } } }> } | undefined
    const buckets = agg?.buckets ?? []
    const sites = buckets.slice(0, limit).map(b => {
      const last = b.day?.last?.hits?.hits?.[0]?._source
      return {
        site: String(b.key),
        ...(last === undefined
          ? {}
          // `partial` is mapped as keyword but _source keeps the JSON boolean; accept both spellings.
          : { lastDay: { start: last['@timestamp'], partial: String(last.partial) === 'true', hits: last.hits, pageviews: last.pageviews, visits: last.visits, visitors: last.visitors } })
      }
    })
    return { sites, truncated: buckets.length > limit }
  }

  async siteStats (site: string, q: { granularity: Granularity, from: string, to: string, limit: number }): Promise<StatsDocument[]> {
    const res = await searchWithRetry(async () => await this.es.search<StatsDocument>({
      index: statsIndexPattern(this.indexPrefix),
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      size: q.limit,
      query: {
        bool: {
          filter: [
            { term: { site } },
            { term: { granularity: q.granularity } },
            { range: { '@timestamp': { gte: q.from, lt: q.to } } }
          ]
        }
      },
      sort: [{ '@timestamp': { order: 'asc' } }]
    }))
    return res.hits.hits.flatMap(h => h._source === undefined ? [] : [h._source])
  }

  async searchEvents (filter: EventFilter, page: { size: number, order: 'asc' | 'desc', after?: string }): Promise<EventPage> {
    const after = page.after === undefined ? undefined : decodeCursor(page.after)
    const res = await searchWithRetry(async () => await this.es.search<AuditEvent>({
      // Statistics indices match the same prefix but hold no audit events (and have no event.id to sort on).
      index: this.eventIndices,
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      query: buildQuery(filter),
      size: page.size,
      sort: [{ '@timestamp': { order: page.order } }, { 'event.id': { order: page.order } }],
      track_total_hits: 10000,
      ...(after === undefined ? {} : { search_after: after })
    }))
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
