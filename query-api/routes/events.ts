/**
 * GET /v1/events: audit search with typed filters, stable pagination and limits.
 */
import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { AuditError } from '../../lib/errors.ts'
import { requireRole } from '../plugins/auth.ts'
import { decodeCursor } from '../store/elasticsearch.ts'
import type { EventFilter, EventStore } from '../store/types.ts'
import { recordOrRefuse, type ApiAuditor } from '../audit.ts'

const List = Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 50 })

export const EventsQuery = Type.Object({
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive start (RFC 3339).' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive end (RFC 3339).' })),
  'event.category': Type.Optional(List),
  'event.action': Type.Optional(List),
  'event.outcome': Type.Optional(Type.Array(Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('unknown')]), { maxItems: 3 })),
  'user.name': Type.Optional(List),
  'host.name': Type.Optional(List),
  'source.ip': Type.Optional(Type.String({ maxLength: 64, description: 'An IP address or CIDR block.' })),
  class: Type.Optional(List),
  ticket: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  customer: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'Free text, matched as words (no query syntax).' })),
  session: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Session or connection id (ssh.session_id, ftp.session_id, db.connection_id).' })),
  stream: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Collector stream (auditline.stream).' })),
  size: Type.Integer({ minimum: 1, default: 50 }),
  order: Type.Union([Type.Literal('desc'), Type.Literal('asc')], { default: 'desc' }),
  after: Type.Optional(Type.String({ maxLength: 1024, description: 'Cursor from the previous page (`next`).' })),
  reason: Type.Optional(Type.String({ minLength: 3, maxLength: 512, description: 'Why this search is made (recorded in the API\'s own audit event).' })),
  case: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._#/-]*$', description: 'Case or ticket id the search belongs to.' }))
}, { additionalProperties: false })

export type EventsQueryT = Static<typeof EventsQuery>

export function badParam (name: string, why: string): AuditError {
  return new AuditError('AUD_ERR_API_BAD_REQUEST', [name, why])
}

export function toFilter (q: EventsQueryT, maxRangeDays: number): EventFilter {
  const f: EventFilter = {}
  if (q.from !== undefined) f.from = q.from
  if (q.to !== undefined) f.to = q.to
  if (f.from !== undefined && f.to !== undefined) {
    const span = Date.parse(f.to) - Date.parse(f.from)
    if (span < 0) throw badParam('to', 'must not be before from')
    if (span > maxRangeDays * 86_400_000) throw badParam('to', `range is longer than ${maxRangeDays} days`)
  }
  if (q['event.category'] !== undefined) f.category = q['event.category']
  if (q['event.action'] !== undefined) f.action = q['event.action']
  if (q['event.outcome'] !== undefined) f.outcome = q['event.outcome']
  if (q['user.name'] !== undefined) f.user = q['user.name']
  if (q['host.name'] !== undefined) f.host = q['host.name']
  if (q.class !== undefined) f.eventClass = q.class
  if (q['source.ip'] !== undefined) {
    const [addr, bits, extra] = q['source.ip'].split('/')
    const family = isIP(addr ?? '')
    const max = family === 4 ? 32 : 128
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max))) {
      throw badParam('source.ip', 'must be an IP address or a CIDR block')
    }
    f.sourceIp = q['source.ip']
  }
  if (q.ticket !== undefined) f.ticket = q.ticket
  if (q.customer !== undefined) f.customer = q.customer
  if (q.q !== undefined) f.text = q.q
  if (q.session !== undefined) f.session = q.session
  if (q.stream !== undefined) f.stream = q.stream
  return f
}

/** Searching audit data is itself an act that must be justified (Art. 32 review, need-to-know). */
export function requireJustification (q: { reason?: string | undefined, case?: string | undefined }): void {
  if (q.reason === undefined && q.case === undefined) throw badParam('reason', 'a search needs a reason or a case id (parameter reason or case)')
}

export function eventsRoutes (app: FastifyInstance, store: EventStore, auditor: ApiAuditor, limits: { maxPageSize: number, maxRangeDays: number }): void {
  app.get('/v1/events', {
    schema: {
      summary: 'Search audit events',
      description: 'Typed filters (list filters take repeated parameters), newest first by default, pages of `size` with the `next` cursor as `after`. Every search must say why: `reason` or `case`. Roles: security, auditor, admin.',
      tags: ['events'],
      querystring: EventsQuery
    }
  }, async (req) => {
    const principal = requireRole(req, ['security', 'auditor'], 'search events')
    const q = req.query as EventsQueryT
    requireJustification(q)
    if (q.size > limits.maxPageSize) throw badParam('size', `must be at most ${limits.maxPageSize}`)
    if (q.after !== undefined && decodeCursor(q.after) === undefined) throw badParam('after', 'is not a cursor this API returned')
    const filter = toFilter(q, limits.maxRangeDays)
    const page = await store.searchEvents(filter, { size: q.size, order: q.order, ...(q.after === undefined ? {} : { after: q.after }) })
    await recordOrRefuse(auditor, { action: 'api_search', outcome: 'success', principal, route: '/v1/events', query: { ...filter, size: q.size, order: q.order }, status: 200, results: page.events.length, reason: q.reason, caseId: q.case, sourceIp: req.ip })
    return page
  })
}
