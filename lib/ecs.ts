/**
 * The canonical event: ECS 8.x field names, versioned by `auditline.schema`. Collectors build these,
 * the indexer stores them, the query API returns them. Custom field sets (ECS has none for them) live
 * under `ftp.*`, `db.*`, `panel.*` and `auditline.*`; see docs/events.md.
 */
import { createHash } from 'node:crypto'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { AuditError } from './errors.ts'
import { canonicalize } from './jcs.ts'

export const ECS_VERSION = '8.17.0'
export const SCHEMA_VERSION = 1

const Str = Type.String({ minLength: 1, maxLength: 8192 })
const StrList = Type.Array(Str, { maxItems: 64 })
const Ip = Type.String({ minLength: 2, maxLength: 64 })
const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const Timestamp = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$' })
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false })
/** Custom field sets (ftp, db, panel): objects of scalar or list values, documented in docs/events.md. */
const CustomSet = Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }),
  Type.Union([Str, Type.Integer(), Type.Boolean(), StrList, Type.Record(Type.String(), Type.Unknown())]))

export const EventKind = Type.Union(['event', 'alert', 'state', 'metric', 'pipeline_error'].map(k => Type.Literal(k)))
export const EventOutcome = Type.Union(['success', 'failure', 'unknown'].map(k => Type.Literal(k)))

export const AuditEventSchema = Strict({
  '@timestamp': Timestamp,
  ecs: Strict({ version: Str }),
  event: Strict({
    /** Deterministic id (see eventId); also the Elasticsearch `_id`. */
    id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    kind: EventKind,
    category: StrList,
    type: StrList,
    action: Str,
    outcome: Type.Optional(EventOutcome),
    dataset: Str,
    module: Type.Optional(Str),
    provider: Type.Optional(Str),
    /** Per-stream sequence number, gap-free within `auditline.stream`. */
    sequence: Type.Integer({ minimum: 0 }),
    created: Type.Optional(Timestamp),
    ingested: Type.Optional(Timestamp),
    /** SHA-256 (hex) over the RFC 8785 canonical form of the event without `event.hash`/`event.ingested`. */
    hash: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
    original: Type.Optional(Type.String({ maxLength: 1048576 })),
    reason: Type.Optional(Str)
  }),
  auditline: Strict({
    schema: Type.Literal(SCHEMA_VERSION),
    /** Stream the sequence number counts in: `<collector host>/<source name>`. */
    stream: Str,
    /** Event class; selects topic and index (`ssh`, `ftp`, `db`, `panel`, `api`, `web`). */
    class: Str,
    flags: Type.Optional(StrList)
  }),
  log: Type.Optional(Strict({
    file: Type.Optional(Strict({ path: Str })),
    offset: Type.Optional(Type.Integer({ minimum: 0 })),
    syslog: Type.Optional(Strict({ appname: Type.Optional(Str), hostname: Type.Optional(Str), procid: Type.Optional(Str) }))
  })),
  host: Type.Optional(Strict({ name: Type.Optional(Str), hostname: Type.Optional(Str) })),
  user: Type.Optional(Strict({
    name: Type.Optional(Str),
    id: Type.Optional(Str),
    target: Type.Optional(Strict({ name: Type.Optional(Str) })),
    effective: Type.Optional(Strict({ name: Type.Optional(Str) }))
  })),
  source: Type.Optional(Strict({ ip: Type.Optional(Ip), port: Type.Optional(Port), address: Type.Optional(Str), domain: Type.Optional(Str) })),
  destination: Type.Optional(Strict({ ip: Type.Optional(Ip), port: Type.Optional(Port), address: Type.Optional(Str) })),
  process: Type.Optional(Strict({ name: Type.Optional(Str), pid: Type.Optional(Type.Integer({ minimum: 0 })), command_line: Type.Optional(Str) })),
  file: Type.Optional(Strict({ path: Type.Optional(Str), target_path: Type.Optional(Str), size: Type.Optional(Type.Integer({ minimum: 0 })), type: Type.Optional(Str) })),
  service: Type.Optional(Strict({ type: Type.Optional(Str), name: Type.Optional(Str) })),
  related: Type.Optional(Strict({ ip: Type.Optional(StrList), user: Type.Optional(StrList), hosts: Type.Optional(StrList) })),
  ssh: Type.Optional(CustomSet),
  ftp: Type.Optional(CustomSet),
  db: Type.Optional(CustomSet),
  panel: Type.Optional(CustomSet),
  /** The query API's own audit events: route, filters, result count, case id (docs/events.md). */
  api: Type.Optional(CustomSet),
  /** Retention's records of deleted indices: index, class, period, documents (docs/retention.md). */
  retention: Type.Optional(CustomSet),
  tags: Type.Optional(StrList),
  labels: Type.Optional(Type.Record(Type.String(), Type.String()))
})

export type AuditEvent = Static<typeof AuditEventSchema>

const ajv = new Ajv({ allErrors: false, strict: false })
const checkEvent = ajv.compile(AuditEventSchema)

/** Throws AUD_ERR_EVENT_INVALID when `value` is not a valid v1 event. */
export function assertEvent (value: unknown): asserts value is AuditEvent {
  if (!checkEvent(value)) {
    const e = checkEvent.errors?.[0]
    const where = e === undefined ? '' : (e.instancePath === '' ? '(root) ' : e.instancePath.slice(1).replaceAll('/', '.') + ' ')
    const what = e?.keyword === 'additionalProperties' ? `unknown field "${String(e.params.additionalProperty)}"` : (e?.message ?? 'invalid')
    throw new AuditError('AUD_ERR_EVENT_INVALID', [SCHEMA_VERSION, where + what])
  }
}

export function isEvent (value: unknown): value is AuditEvent {
  return checkEvent(value)
}

/**
 * Deterministic event id: the same source position always yields the same id, so that replays
 * (collector restart, Kafka redelivery) overwrite in the index instead of duplicating.
 * `parts` identify the position, e.g. [host, source, device:inode, generation, byte offset].
 */
export function eventId (...parts: ReadonlyArray<string | number>): string {
  const h = createHash('sha256')
  for (const p of parts) h.update(String(p)).update('\u0000')
  return h.digest('hex').slice(0, 32)
}

/** The hash covers everything but itself and the indexer's `event.ingested`. */
export function eventHash (event: AuditEvent): string {
  const { hash: _h, ingested: _i, ...rest } = event.event
  return createHash('sha256').update(canonicalize({ ...event, event: rest })).digest('hex')
}

/** Returns the event with `event.hash` set (a new object; the input is not changed). */
export function sealEvent (event: AuditEvent): AuditEvent {
  const out = { ...event, event: { ...event.event } }
  delete out.event.hash
  out.event.hash = eventHash(out)
  return out
}

export function verifyEventHash (event: AuditEvent): { ok: boolean, computed: string } {
  const computed = eventHash(event)
  return { ok: computed === event.event.hash, computed }
}

export type { TSchema }
