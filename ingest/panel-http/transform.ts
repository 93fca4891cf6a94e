/**
 * Control-panel change event (request body) → ECS audit event. Pure.
 *
 * The body carries the *names* of changed fields, never their values: an audit trail of who changed
 * what under which ticket must not become a second copy of customers' data (passwords, addresses,
 * mail contents). Every object is `additionalProperties: false`, so a body with `old`/`new`/`values`
 * is refused as a whole, with a message that says why.
 */
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import { Ajv, type ErrorObject } from 'ajv'
import { ECS_VERSION, SCHEMA_VERSION, assertEvent, eventId, sealEvent, type AuditEvent } from '../../lib/ecs.ts'
import { canonicalize } from '../../lib/jcs.ts'

/** Printable ASCII without spaces: ids the panel makes up (UUIDs, ULIDs, `chg-123`). */
const Token = (maxLength: number) => Type.String({ pattern: `^[!-~]{1,${maxLength}}$` })
const Name = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })

export const TICKET_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._#/-]{0,63}$'
/** Most changed field names one event may list (ECS list fields of auditline hold at most 64). */
export const MAX_CHANGED_FIELDS = 64

export const PanelEventBodySchema = Type.Object({
  /** The panel's own id of this change: the idempotency key. A retry must send the same id and content. */
  id: Token(128),
  /** When the change was made (RFC 3339 with offset). */
  timestamp: Type.String({ minLength: 20, maxLength: 40 }),
  actor: Type.Object({
    kind: Type.Union([Type.Literal('customer'), Type.Literal('staff')]),
    /** Stable id of the acting account in the panel. */
    id: Token(128),
    /** Login name of the acting account (becomes `user.name`; `id` when absent). */
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 }))
  }, { additionalProperties: false }),
  /** Customer (tenant) whose data changed. */
  customer: Token(128),
  object: Type.Object({
    /** Kind of object, snake_case: `domain`, `mailbox`, `dns_record`, `ftp_user`, `database`, `user`. */
    type: Name,
    id: Type.String({ minLength: 1, maxLength: 256 }),
  }, { additionalProperties: false }),
  /** What was done, snake_case: `create`, `update`, `delete`, or a panel verb such as `suspend`. */
  action: Name,
  /** Names of the changed fields only. */
  changed_fields: Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.\\[\\]-]{0,127}$' }), { maxItems: MAX_CHANGED_FIELDS, uniqueItems: true }),
  /** The ticket that ordered the change; required for staff changes. */
  ticket_id: Type.Optional(Type.String({ pattern: TICKET_PATTERN })),
  /** IP address of the acting person as the panel saw it. */
  source_ip: Type.Optional(Type.String({ minLength: 2, maxLength: 64 })),
  /** Free-text reason given in the panel. */
  reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 }))
}, { additionalProperties: false })

export type PanelEventBody = Static<typeof PanelEventBodySchema>

export interface ItemError {
  /** Position in the batch (0 for a single event). */
  index: number
  /** Dotted path of the offending field, e.g. `ticket_id`, `actor.kind`, `old`. */
  field: string
  reason: string
}

export interface CheckOptions {
  requireTicketForStaff: boolean
}

export const FLAG_NO_TICKET = 'staff_change_without_ticket'

/** Unknown keys that look like someone is sending values instead of names. */
const VALUE_KEY = /^(old|new|value|values|before|after|previous|current|diff|changes|data|payload|password|passwd|secret|content)(_.*)?$|_(value|values|old|new)$/i
/** Ticket fields filled in to get past a form, not references to a ticket. */
const PLACEHOLDER_TICKETS = new Set(['na', 'n/a', 'none', 'null', 'nil', '-', '--', '0', 'tbd', 'todo', 'unknown', 'x', 'xxx', 'test', 'ticket', 'kein', 'keins', 'ohne'])

const ajv = new Ajv({ allErrors: true, strict: false })
const checkShape = ajv.compile<PanelEventBody>(PanelEventBodySchema)

/** Checks one body. Returns the typed body, or every reason it is refused. */
export function checkBody (raw: unknown, index: number, opts: CheckOptions): { body: PanelEventBody } | { errors: ItemError[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { errors: [{ index, field: '(event)', reason: 'must be a JSON object' }] }
  }
  const errors: ItemError[] = []
  if (!checkShape(raw)) {
    for (const e of checkShape.errors ?? []) errors.push(describe(e, index))
    return { errors: dedupe(errors) }
  }
  const body = raw
  if (parseRfc3339(body.timestamp) === undefined) {
    errors.push({ index, field: 'timestamp', reason: 'must be an RFC 3339 date-time with offset, e.g. 2026-11-28T09:15:00Z' })
  }
  if (body.source_ip !== undefined && isIP(body.source_ip) === 0) {
    errors.push({ index, field: 'source_ip', reason: 'must be an IPv4 or IPv6 address' })
  }
  if (body.ticket_id !== undefined && PLACEHOLDER_TICKETS.has(body.ticket_id.toLowerCase())) {
    errors.push({ index, field: 'ticket_id', reason: `"${body.ticket_id}" is a placeholder, not a ticket reference` })
  }
  if (body.actor.kind === 'staff' && body.ticket_id === undefined && opts.requireTicketForStaff) {
    errors.push({ index, field: 'ticket_id', reason: 'is required when actor.kind is "staff": a staff change must name the ticket that ordered it' })
  }
  return errors.length > 0 ? { errors } : { body }
}

function describe (e: ErrorObject, index: number): ItemError {
  const path = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/')
  if (e.keyword === 'additionalProperties') {
    const name = String((e.params as { additionalProperty?: string }).additionalProperty)
    const field = [...path, name].join('.')
    return {
      index,
      field,
      reason: VALUE_KEY.test(name)
        ? 'values must not be sent: list only the names of changed fields in changed_fields (no old/new values, no passwords)'
        : 'is not a known field (values must not be sent; see docs/sources/panel-http.md for the event body)'
    }
  }
  if (e.keyword === 'required') {
    const name = String((e.params as { missingProperty?: string }).missingProperty)
    return { index, field: [...path, name].join('.'), reason: 'is required' }
  }
  const field = path.join('.') || '(event)'
  if (field === 'ticket_id' && e.keyword === 'pattern') {
    return { index, field, reason: 'must be a ticket reference: 1–64 of A–Z a–z 0–9 . _ # / -, starting with a letter or digit' }
  }
  if (/^changed_fields\.\d+$/.test(field) && e.keyword === 'pattern') {
    return { index, field, reason: 'must be a field name (letters, digits, _ . - [ ]), not a value' }
  }
  return { index, field, reason: e.message ?? 'is invalid' }
}

function dedupe (errors: ItemError[]): ItemError[] {
  const seen = new Set<string>()
  return errors.filter(e => {
    const k = `${e.field}\u0000${e.reason}`
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/

/** Normalises an RFC 3339 date-time to `YYYY-MM-DDTHH:mm:ss.sssZ`; undefined when it is not one (or not a real date). */
export function parseRfc3339 (s: string): string | undefined {
  const m = RFC3339.exec(s)
  if (m === null) return undefined
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate()
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || sec > 59) return undefined
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined
  const t = Date.parse(s.toUpperCase())
  return Number.isNaN(t) ? undefined : new Date(t).toISOString()
}

/** SHA-256 of the body's canonical form: a retry under the same id must carry the same content. */
export function fingerprint (body: PanelEventBody): string {
  return createHash('sha256').update(canonicalize(body)).digest('hex').slice(0, 32)
}

export interface StreamPosition {
  /** Authenticated client id (`panel.client`); the stream is `panel/<clientId>`. */
  clientId: string
  sequence: number
}

export const PANEL_DATASET = 'panel.change'

export function panelStream (clientId: string): string {
  return `panel/${clientId}`
}

/** ECS iam objects: accounts, groups, roles and credentials; everything else is configuration. */
const IAM_USER = /^(user|account|[a-z0-9_]+_(user|account)|ssh_key|api_key)$/
const IAM_GROUP = /^(group|role|permission|[a-z0-9_]+_(group|role))$/

function typeOf (action: string): 'creation' | 'deletion' | 'change' {
  if (action === 'create') return 'creation'
  if (action === 'delete') return 'deletion'
  return 'change'
}

/** Builds the sealed event. `body` must have passed `checkBody` (with the same `requireTicketForStaff`). */
export function toEvent (body: PanelEventBody, pos: StreamPosition): AuditEvent {
  const ts = parseRfc3339(body.timestamp)
  if (ts === undefined) throw new TypeError('toEvent needs a body that passed checkBody')
  const iamUser = IAM_USER.test(body.object.type)
  const iamGroup = !iamUser && IAM_GROUP.test(body.object.type)
  const change = typeOf(body.action)
  const noTicket = body.actor.kind === 'staff' && body.ticket_id === undefined
  const userName = body.actor.name ?? body.actor.id
  const e: AuditEvent = {
    '@timestamp': ts,
    ecs: { version: ECS_VERSION },
    event: {
      // The client's own id, not a position: a retry (same client, same id) yields the same document.
      id: eventId('panel', pos.clientId, body.id),
      kind: 'event',
      category: [iamUser || iamGroup ? 'iam' : 'configuration'],
      type: iamUser ? ['user', change] : iamGroup ? ['group', change] : [change],
      action: `panel_${body.action}`,
      outcome: 'success',
      dataset: PANEL_DATASET,
      module: 'panel',
      // No `event.created` from the clock: a retried request must yield the identical event (same hash).
      sequence: pos.sequence,
      ...(body.reason === undefined ? {} : { reason: body.reason })
    },
    auditline: {
      schema: SCHEMA_VERSION,
      stream: panelStream(pos.clientId),
      class: 'panel',
      ...(noTicket ? { flags: [FLAG_NO_TICKET] } : {})
    },
    user: { name: userName, id: body.actor.id },
    ...(body.source_ip === undefined ? {} : { source: { ip: body.source_ip } }),
    related: {
      user: [...new Set([userName, body.actor.id])],
      ...(body.source_ip === undefined ? {} : { ip: [body.source_ip] })
    },
    panel: {
      change_id: body.id,
      client: pos.clientId,
      actor_kind: body.actor.kind,
      actor_id: body.actor.id,
      customer: body.customer,
      object_type: body.object.type,
      object_id: body.object.id,
      action: body.action,
      changed_fields: [...body.changed_fields],
      ...(body.ticket_id === undefined ? {} : { ticket_id: body.ticket_id })
    },
    ...(noTicket ? { tags: [FLAG_NO_TICKET] } : {})
  }
  const sealed = sealEvent(e)
  assertEvent(sealed)
  return sealed
}
