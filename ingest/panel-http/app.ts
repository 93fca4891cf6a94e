/**
 * The panel intake's fastify application. A request is answered 202 only after Kafka acknowledged
 * every event in it (acks=all); before that, nothing is confirmed, and a 503 tells the panel to retry
 * with the same ids. Validation is all-or-nothing per request.
 */
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Producer, Message } from 'kafkajs'
import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../../lib/log.ts'
import { AuditError, isAuditError } from '../../lib/errors.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import type { PanelClient, PanelConfig } from './config.ts'
import { clientAuthenticator } from './auth.ts'
import { checkBody, fingerprint, toEvent, type ItemError, type PanelEventBody } from './transform.ts'
import type { SequenceJournal } from '../../lib/sequence-journal.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated panel client (set on the intake's POST routes). */
    panelClient?: PanelClient
  }
}

export interface PanelAppDeps {
  log: Logger
  /** Only `send` is used: one call per request, acks=-1. */
  producer: Pick<Producer, 'send'>
  /** Full topic name, e.g. `prod.audit.panel.v1`. */
  topic: string
  /** One journal per configured client id. */
  journals: ReadonlyMap<string, SequenceJournal>
  metrics: Registry
}

/** What a 202 lists per event, so that the panel can store where its change went. */
export interface AcceptedEvent {
  id: string
  event_id: string
  sequence: number
}

interface Metrics {
  accepted: Counter<'client_id'>
  rejected: Counter<'code'>
}

function metricsIn (reg: Registry): Metrics {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    accepted: get('auditline_panel_events_total', () => new Counter({ name: 'auditline_panel_events_total', help: 'Panel events acknowledged by Kafka and answered 202', labelNames: ['client_id'], registers: [reg] })),
    rejected: get('auditline_panel_rejected_total', () => new Counter({ name: 'auditline_panel_rejected_total', help: 'Panel requests answered with an error, by error code', labelNames: ['code'], registers: [reg] }))
  }
}

const MAX_MESSAGE_ITEMS = 5

function invalid (errors: ItemError[], batch: boolean): AuditError {
  const shown = errors.slice(0, MAX_MESSAGE_ITEMS).map(e => `${batch ? `item ${e.index}: ` : ''}${e.field} ${e.reason}`)
  const more = errors.length > MAX_MESSAGE_ITEMS ? `; and ${errors.length - MAX_MESSAGE_ITEMS} more (see items)` : ''
  return new AuditError('AUD_ERR_PANEL_EVENT_INVALID', [shown.join('; ') + more], { meta: { items: errors } })
}

export function buildPanelApp (cfg: PanelConfig, deps: PanelAppDeps): FastifyInstance {
  const log = deps.log.child({ component: 'ingest.panel-http' })
  const m = metricsIn(deps.metrics)
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast drops pino's generics so that the instance type stays the default one.
    loggerInstance: log as FastifyBaseLogger,
    requestIdHeader: false,
    bodyLimit: cfg.maxBodyBytes
  })
  const authenticate = clientAuthenticator(cfg.clients)
  /** Events of requests that passed validation and wait for their acknowledgement. */
  let pending = 0
  app.decorateRequest('panelClient', undefined)

  app.setErrorHandler((err: FastifyError, req, reply) => {
    let e: AuditError
    if (isAuditError(err)) {
      e = err
    } else if (err.statusCode === 413) {
      e = new AuditError('AUD_ERR_PANEL_TOO_LARGE', [`request body is larger than ${cfg.maxBodyBytes} bytes`])
    } else if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      // fastify's own 4xx: not JSON, wrong content type, empty body. Keep its status (400/415).
      e = new AuditError('AUD_ERR_PANEL_BAD_REQUEST', [err.message])
      m.rejected.inc({ code: e.code })
      return reply.status(err.statusCode).send({ error: e.code, message: e.message })
    } else {
      req.log.error({ err }, 'Panel request failed.')
      e = new AuditError('AUD_ERR_API_INTERNAL')
    }
    m.rejected.inc({ code: e.code })
    if (e.retriable) reply.header('retry-after', '1')
    const items = e.meta.items
    return reply.status(e.status ?? 500).send({ error: e.code, message: e.message, ...(items === undefined ? {} : { items }) })
  })

  async function auth (req: FastifyRequest): Promise<void> {
    req.panelClient = await authenticate(req)
  }

  async function accept (req: FastifyRequest, reply: FastifyReply, items: readonly unknown[], batch: boolean): Promise<FastifyReply> {
    const client = req.panelClient
    if (client === undefined) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
    const errors: ItemError[] = []
    const bodies: PanelEventBody[] = []
    items.forEach((raw, i) => {
      const r = checkBody(raw, i, { requireTicketForStaff: cfg.requireTicketForStaff })
      if ('errors' in r) errors.push(...r.errors)
      else bodies.push(r.body)
    })
    if (errors.length > 0) {
      req.log.info({ client_id: client.id, error_code: 'AUD_ERR_PANEL_EVENT_INVALID', refused: new Set(errors.map(e => e.index)).size, events: items.length }, 'Refused panel events.')
      throw invalid(errors, batch)
    }
    if (client.tenant !== undefined) {
      const foreign = bodies.flatMap((b, index) => b.customer === client.tenant ? [] : [{ index, field: 'customer', reason: `is not ${client.tenant}, the only customer this client may post for` }])
      const first = foreign[0]
      if (first !== undefined) {
        req.log.warn({ client_id: client.id, error_code: 'AUD_ERR_PANEL_TENANT_MISMATCH', events: foreign.length }, 'Client posted events of a customer it is not bound to.')
        throw new AuditError('AUD_ERR_PANEL_TENANT_MISMATCH', [client.id, client.tenant, (bodies[first.index] as PanelEventBody).customer], { meta: { items: foreign } })
      }
    }
    const journal = deps.journals.get(client.id)
    if (journal === undefined) throw new Error(`no sequence journal for client ${client.id}`)
    if (pending + bodies.length > cfg.maxPendingEvents) {
      // Checked before any number is reserved: a request refused here leaves no trace in the stream.
      throw new AuditError('AUD_ERR_PANEL_UNAVAILABLE', [bodies.length, `${pending} events already wait for Kafka (panel.maxPendingEvents ${cfg.maxPendingEvents})`])
    }
    pending += bodies.length
    let events: AuditEvent[]
    try {
      const reserved = await journal.reserve(bodies.map(b => ({ key: b.id, fingerprint: fingerprint(b) })))
      if ('conflicts' in reserved) {
        const ids = reserved.conflicts.map(i => (bodies[i] as PanelEventBody).id)
        throw new AuditError('AUD_ERR_PANEL_ID_CONFLICT', [ids.join(', ')], {
          meta: { items: reserved.conflicts.map(index => ({ index, field: 'id', reason: 'was already accepted with different content; a new change needs a new id' })) }
        })
      }
      events = bodies.map((b, i) => toEvent(b, { clientId: client.id, sequence: reserved.sequences[i] as number }))
      await produce(events, bodies, client)
    } finally {
      pending -= bodies.length
    }
    m.accepted.inc({ client_id: client.id }, events.length)
    const accepted: AcceptedEvent[] = events.map((e, i) => ({ id: (bodies[i] as PanelEventBody).id, event_id: e.event.id, sequence: e.event.sequence }))
    return reply.status(202).send(batch ? { accepted: accepted.length, events: accepted } : accepted[0])
  }

  async function produce (events: readonly AuditEvent[], bodies: readonly PanelEventBody[], client: PanelClient): Promise<void> {
    // A batch may repeat an id (same content, same event): send each event once.
    const unique = new Map(events.map((e, i) => [e.event.id, { e, key: (bodies[i] as PanelEventBody).customer }]))
    const messages: Message[] = [...unique.values()].map(({ e, key }) => ({ key, value: JSON.stringify(e), headers: { 'auditline-schema': '1' } }))
    let timer: NodeJS.Timeout | undefined
    const send = deps.producer.send({ topic: deps.topic, acks: -1, messages })
    // When the timeout wins, the send goes on; its late outcome must not become an unhandled rejection.
    send.catch(() => {})
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`no acknowledgement within ${cfg.ackTimeoutMs} ms`)) }, cfg.ackTimeoutMs)
    })
    try {
      await Promise.race([send, timeout])
    } catch (err) {
      const e = new AuditError('AUD_ERR_PANEL_UNAVAILABLE', [messages.length, err], { cause: err })
      log.warn({ error_code: e.code, err: e, client_id: client.id, events: messages.length, topic: deps.topic }, 'Kafka did not acknowledge panel events; answered 503.')
      throw e
    } finally {
      clearTimeout(timer)
    }
  }

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.post('/v1/panel-events', { onRequest: auth }, async (req, reply) => {
    if (Array.isArray(req.body)) throw new AuditError('AUD_ERR_PANEL_BAD_REQUEST', ['send one event object here; arrays go to POST /v1/panel-events/batch'])
    return await accept(req, reply, [req.body], false)
  })

  app.post('/v1/panel-events/batch', { onRequest: auth }, async (req, reply) => {
    const body = req.body
    if (!Array.isArray(body)) throw new AuditError('AUD_ERR_PANEL_BAD_REQUEST', ['a batch is a JSON array of events'])
    if (body.length === 0) throw new AuditError('AUD_ERR_PANEL_BAD_REQUEST', ['the batch is empty'])
    if (body.length > cfg.maxBatch) throw new AuditError('AUD_ERR_PANEL_TOO_LARGE', [`a batch may carry at most ${cfg.maxBatch} events, this one has ${body.length}`])
    return await accept(req, reply, body, true)
  })

  return app
}
