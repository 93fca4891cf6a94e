/**
 * The auditors are audited too: every search, export and refused request the API serves is written as an
 * audit event (class `api`, topic `audit.api.v1`) through the same pipeline as every other event, with a
 * gap-free sequence per API instance (lib/sequence-journal.ts). A search is answered only after its audit
 * event was acknowledged by Kafka: if auditing fails, the search fails (503) rather than go unrecorded.
 */
import { randomUUID } from 'node:crypto'
import type { Producer } from 'kafkajs'
import { ECS_VERSION, SCHEMA_VERSION, assertEvent, eventId, sealEvent, type AuditEvent } from '../lib/ecs.ts'
import type { SequenceJournal } from '../lib/sequence-journal.ts'
import { AuditError } from '../lib/errors.ts'
import type { Principal } from './plugins/auth.ts'

export interface ApiAuditInput {
  action: 'api_search' | 'api_stats' | 'api_export' | 'api_refused'
  outcome: 'success' | 'failure'
  principal?: Principal | undefined
  route: string
  /** The request's filters as the API understood them (never a request body with secrets). */
  query: Record<string, unknown>
  status: number
  results?: number
  reason?: string | undefined
  caseId?: string | undefined
  sourceIp?: string | undefined
}

export interface ApiAuditor {
  record (input: ApiAuditInput): Promise<void>
  close (): Promise<void>
}

/** Builds the audit event (pure apart from the clock and the request id). */
export function apiAuditEvent (input: ApiAuditInput, host: string, sequence: number, now: Date, requestId: string): AuditEvent {
  const p = input.principal
  const e: AuditEvent = {
    '@timestamp': now.toISOString(),
    ecs: { version: ECS_VERSION },
    event: {
      id: eventId('api', host, 'query-api', sequence),
      kind: 'event',
      category: ['web', 'iam'],
      type: input.outcome === 'success' ? ['access'] : ['access', 'denied'],
      action: input.action,
      outcome: input.outcome,
      dataset: 'auditline.api',
      module: 'query-api',
      sequence,
      ...(input.reason === undefined ? {} : { reason: input.reason })
    },
    auditline: { schema: SCHEMA_VERSION, stream: `${host}/query-api`, class: 'api' },
    host: { name: host },
    ...(p === undefined ? {} : { user: { name: p.owner, id: p.keyId } }),
    ...(input.sourceIp === undefined ? {} : { source: { ip: input.sourceIp } }),
    api: {
      route: input.route,
      query: JSON.stringify(input.query),
      status: input.status,
      request_id: requestId,
      ...(input.results === undefined ? {} : { results: input.results }),
      ...(input.caseId === undefined ? {} : { case_id: input.caseId }),
      ...(p === undefined ? {} : { roles: [...p.roles], key_id: p.keyId })
    }
  }
  const sealed = sealEvent(e)
  assertEvent(sealed)
  return sealed
}

/**
 * Numbers each audit event from `journal` (gap-free per API instance) and hands it to `deliver`, which resolves
 * once the event is durable: acknowledged by Kafka, or committed to the embedded store.
 */
export function journaledAuditor (journal: SequenceJournal, host: string, deliver: (event: AuditEvent) => Promise<void>): ApiAuditor {
  return {
    async record (input) {
      const requestId = randomUUID()
      const r = await journal.reserve([{ key: requestId, fingerprint: '' }])
      if ('conflicts' in r) throw new AuditError('AUD_ERR_API_AUDIT', ['sequence conflict'])
      const event = apiAuditEvent(input, host, r.sequences[0] as number, new Date(), requestId)
      try {
        await deliver(event)
      } catch (err) {
        throw new AuditError('AUD_ERR_API_AUDIT', [err], { cause: err })
      }
    },
    async close () { await journal.close() }
  }
}

export function kafkaAuditor (producer: Producer, topic: string, journal: SequenceJournal, host: string): ApiAuditor {
  return journaledAuditor(journal, host, async event => {
    await producer.send({ topic, acks: -1, messages: [{ key: event.auditline.stream, value: JSON.stringify(event) }] })
  })
}

/** Records `input`; any failure becomes AUD_ERR_API_AUDIT (503), so an unrecorded request is never served. */
export async function recordOrRefuse (auditor: ApiAuditor, input: ApiAuditInput): Promise<void> {
  try {
    await auditor.record(input)
  } catch (err) {
    if (err instanceof AuditError && err.code === 'AUD_ERR_API_AUDIT') throw err
    throw new AuditError('AUD_ERR_API_AUDIT', [err], { cause: err })
  }
}
