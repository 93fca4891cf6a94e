/**
 * The statistics feed: GET /v1/stats/sites (the caller's sites) and GET /v1/stats/sites/:site (a site's
 * hourly or daily series and top lists over a range), read from the statistics indices that the statistics
 * stage fills (anonymizer/stats, docs/stats.md) — anonymized data only.
 *
 * A `stats` key sees its tenant's sites (`queryApi.tenants`), `admin` every site, other roles none (403).
 * A site outside the caller's scope is answered 404 exactly like a site nobody has, before the store is
 * asked: a key learns nothing about other tenants' sites, not even whether they exist (a 403 would confirm it).
 */
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { AuditError } from '../../lib/errors.ts'
import { GRANULARITIES, type Granularity } from '../../anonymizer/stats/record.ts'
import { requireRole } from '../plugins/auth.ts'
import type { EventStore } from '../store/types.ts'
import { recordOrRefuse, type ApiAuditor } from '../audit.ts'
import type { QueryApiConfig } from '../config.ts'
import { inScope, siteScope } from '../tenants.ts'
import { TOP_LISTS, siteStatsOf } from '../stats-series.ts'
import { badParam } from './events.ts'

/** Most sites one listing returns (then `truncated`). */
export const SITE_LIST_LIMIT = 1000
const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000
/** Range when `from` is not given: two days of hours, or thirty days (ending with the current bucket). */
const DEFAULT_SPAN_MS: Record<Granularity, number> = { hour: 48 * HOUR_MS, day: 30 * DAY_MS }

const Time = (description: string) => Type.Union([Type.String({ format: 'date-time' }), Type.String({ format: 'date' })], { description })

export const SiteParams = Type.Object({
  site: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$', description: 'Site name as listed by GET /v1/stats/sites.' })
}, { additionalProperties: false })

export const SiteStatsQuery = Type.Object({
  granularity: Type.Union(GRANULARITIES.map(g => Type.Literal(g)), { default: 'day', description: 'Bucket size of the series: `hour` or `day` (UTC).' }),
  from: Type.Optional(Time('Inclusive start: RFC 3339 date-time or `YYYY-MM-DD` (UTC). Default: `to` − 48 hours (hour) or − 30 days (day).')),
  to: Type.Optional(Time('Exclusive end, same forms. Default: the end of the current hour (hour) or UTC day (day).')),
  top: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Entries per merged top list.' })
}, { additionalProperties: false })

export type SiteStatsQueryT = Static<typeof SiteStatsQuery>

const Num = Type.Integer({ minimum: 0 })
const Status = Type.Object({ '2xx': Num, '3xx': Num, '4xx': Num, '5xx': Num, other: Num })
const Split = Type.Object({ hits: Num, visitors: Num })
const Top = Type.Array(Type.Object({ key: Type.String(), count: Num }))

const SitesReply = Type.Object({
  sites: Type.Array(Type.Object({
    site: Type.String(),
    lastDay: Type.Optional(Type.Object({ start: Type.String(), partial: Type.Boolean(), hits: Num, pageviews: Num, visits: Num, visitors: Num }, { description: 'The newest day document (partial while the day is open).' }))
  })),
  truncated: Type.Boolean({ description: `More than ${SITE_LIST_LIMIT} sites matched; the first ones by name are listed.` })
})

const SiteStatsReply = Type.Object({
  site: Type.String(),
  granularity: Type.String(),
  from: Type.String(),
  to: Type.String(),
  series: Type.Array(Type.Object({
    start: Type.String(),
    end: Type.String(),
    partial: Type.Boolean({ description: 'The bucket was still open when its document was written.' }),
    hits: Num,
    pageviews: Num,
    visits: Num,
    visitors: Num,
    bytes: Num,
    status: Status,
    humans: Split,
    bots: Split
  }), { description: 'One point per bucket that has a document, oldest first (buckets without traffic have none).' }),
  totals: Type.Object({ hits: Num, pageviews: Num, visits: Num, bytes: Num, status: Status }, { description: 'Sums over the series (visitors do not add up across days, so they are not summed).' }),
  top: Type.Object(Object.fromEntries(TOP_LISTS.map(n => [n, Top])), { description: 'Top lists summed over the range; counts are lower bounds where a key fell out of some buckets\' lists.' })
})

function toIso (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  // `YYYY-MM-DD` is midnight UTC; a date-time carries its own offset.
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value)
  if (Number.isNaN(ms)) throw badParam(name, 'is not a valid date')
  return ms
}

/** The effective [from, to) of a request, checked against the granularity's longest range. */
export function statsRange (q: Pick<SiteStatsQueryT, 'granularity' | 'from' | 'to'>, limits: QueryApiConfig['stats'], now = Date.now()): { from: number, to: number, maxBuckets: number } {
  const g = q.granularity as Granularity
  const step = g === 'hour' ? HOUR_MS : DAY_MS
  // Default end: the end of the current (still open) bucket, so that the defaults cover whole buckets.
  const to = toIso(q.to, 'to') ?? Math.floor(now / step) * step + step
  const from = toIso(q.from, 'from') ?? to - DEFAULT_SPAN_MS[g]
  if (to <= from) throw badParam('to', 'must be after from')
  const maxDays = g === 'hour' ? limits.maxHourRangeDays : limits.maxDayRangeDays
  if (to - from > maxDays * DAY_MS) throw badParam('from', `the range is longer than ${maxDays} days, the most a ${g} series may span (queryApi.stats.max${g === 'hour' ? 'Hour' : 'Day'}RangeDays)`)
  return { from, to, maxBuckets: Math.ceil((to - from) / step) + 1 }
}

export function statsRoutes (app: FastifyInstance, store: EventStore, auditor: ApiAuditor, cfg: Pick<QueryApiConfig, 'tenants' | 'stats'>): void {
  function scopeOf (req: Parameters<typeof requireRole>[0]): { principal: ReturnType<typeof requireRole>, scope: NonNullable<ReturnType<typeof siteScope>> } {
    const principal = requireRole(req, ['stats'], 'read statistics')
    const scope = siteScope(principal, cfg.tenants)
    if (scope === undefined) throw new AuditError('AUD_ERR_API_FORBIDDEN', [principal.roles.join(','), 'read statistics'])
    return { principal, scope }
  }

  app.get('/v1/stats/sites', {
    schema: {
      summary: 'The statistics sites the caller may read',
      description: 'A `stats` key: its tenant\'s sites (queryApi.tenants) that have statistics; `admin`: every site. Roles: stats, admin.',
      tags: ['statistics'],
      response: { 200: SitesReply }
    }
  }, async (req) => {
    const { principal, scope } = scopeOf(req)
    const listed = await store.listSites(scope, SITE_LIST_LIMIT)
    await recordOrRefuse(auditor, { action: 'api_stats', outcome: 'success', principal, route: '/v1/stats/sites', query: {}, status: 200, results: listed.sites.length, sourceIp: req.ip })
    return listed
  })

  app.get('/v1/stats/sites/:site', {
    schema: {
      summary: 'A site\'s hourly or daily series and top lists',
      description: 'Series of hits, pageviews, visits, unique visitors, bytes and status classes per bucket, and the top pages, entry pages, referrer domains, browsers, OS and devices merged over the range. A site outside the caller\'s tenant is 404, like one that does not exist. Roles: stats, admin.',
      tags: ['statistics'],
      params: SiteParams,
      querystring: SiteStatsQuery,
      response: { 200: SiteStatsReply }
    }
  }, async (req) => {
    const { principal, scope } = scopeOf(req)
    const { site } = req.params as Static<typeof SiteParams>
    if (!inScope(scope, site)) throw new AuditError('AUD_ERR_API_NOT_FOUND', ['statistics site', site])
    const q = req.query as SiteStatsQueryT
    const g = q.granularity as Granularity
    const range = statsRange(q, cfg.stats)
    const from = new Date(range.from).toISOString()
    const to = new Date(range.to).toISOString()
    const docs = await store.siteStats(site, { granularity: g, from, to, limit: range.maxBuckets })
    const answer = siteStatsOf(site, g, from, to, docs, q.top)
    await recordOrRefuse(auditor, { action: 'api_stats', outcome: 'success', principal, route: '/v1/stats/sites/:site', query: { site, granularity: g, from, to, top: q.top }, status: 200, results: answer.series.length, sourceIp: req.ip })
    return answer
  })
}
