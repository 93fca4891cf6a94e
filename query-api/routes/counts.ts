/**
 * GET /v1/events/counts: how many events match the search filters, by action, user, host or UTC day.
 * Same filters, roles and justification rule as GET /v1/events; the aggregation is built in the store from
 * the typed `by`, and its buckets are bounded (`size` for fields, the range for days).
 */
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { requireRole } from '../plugins/auth.ts'
import type { CountBy, EventStore } from '../store/types.ts'
import { recordOrRefuse, type ApiAuditor } from '../audit.ts'
import { EventsQuery, badParam, requireJustification, toFilter } from './events.ts'

export const COUNT_BY = ['event.action', 'user.name', 'host.name', 'day'] as const satisfies readonly CountBy[]
/** Most buckets a field count returns. */
export const MAX_COUNT_BUCKETS = 100

export const CountsQuery = Type.Composite([
  Type.Omit(EventsQuery, ['size', 'order', 'after']),
  Type.Object({
    by: Type.Union(COUNT_BY.map(b => Type.Literal(b)), { description: 'What to count by: a field, or `day` (UTC).' }),
    size: Type.Integer({ minimum: 1, maximum: MAX_COUNT_BUCKETS, default: 10, description: 'Buckets of a field count (most frequent first).' })
  })
], { additionalProperties: false })

export type CountsQueryT = Static<typeof CountsQuery>

const Counts = Type.Object({
  by: Type.String(),
  from: Type.Optional(Type.String({ description: 'Effective start (for `by=day`: the given one, else `to` − queryApi.maxRangeDays).' })),
  to: Type.Optional(Type.String()),
  total: Type.Integer({ description: 'Matching events.' }),
  other: Type.Integer({ description: 'Matching events not in `buckets` (further values, or no value).' }),
  buckets: Type.Array(Type.Object({ key: Type.String(), count: Type.Integer() }))
})

export function countsRoutes (app: FastifyInstance, store: EventStore, auditor: ApiAuditor, limits: { maxRangeDays: number }): void {
  app.get('/v1/events/counts', {
    schema: {
      summary: 'Count matching events by action, user, host or day',
      description: 'Takes the filters of GET /v1/events (and, like it, a `reason` or `case`). Roles: security, auditor, admin.',
      tags: ['events'],
      querystring: CountsQuery,
      response: { 200: Counts }
    }
  }, async (req) => {
    const principal = requireRole(req, ['security', 'auditor'], 'count events')
    const q = req.query as CountsQueryT
    requireJustification(q)
    const filter = toFilter({ ...q, size: 1, order: 'desc' }, limits.maxRangeDays)
    let range: { from?: string, to?: string } = {}
    if (q.by === 'day') {
      // Day buckets are bounded by the range: without `from`, the last maxRangeDays days are counted.
      const to = filter.to ?? new Date().toISOString()
      const from = filter.from ?? new Date(Date.parse(to) - limits.maxRangeDays * 86_400_000).toISOString()
      if (Date.parse(to) < Date.parse(from)) throw badParam('to', 'must not be before from')
      range = { from, to }
      filter.from = from
      filter.to = to
    }
    const counts = await store.countEvents(filter, q.by as CountBy, { size: q.size, ...range })
    await recordOrRefuse(auditor, { action: 'api_search', outcome: 'success', principal, route: '/v1/events/counts', query: { ...filter, by: q.by, size: q.size }, status: 200, results: counts.total, reason: q.reason, caseId: q.case, sourceIp: req.ip })
    return { by: q.by, ...range, ...counts }
  })
}
