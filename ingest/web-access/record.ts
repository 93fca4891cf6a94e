/**
 * The raw web access record: one access-log line as the collector sends it to the RESTRICTED topic
 * `web.access.raw.v1` (visitor IPs in clear; one hour retention; read only by the anonymizer).
 * It is not an audit event (no `event.hash`, not indexed): ECS field names so that the anonymizer and the
 * statistics stage speak the same language as the rest of auditline. The Kafka key is the client address.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { AuditError } from '../../lib/errors.ts'

/** Version of this record layout (`auditline.schema`). */
export const WEB_ACCESS_SCHEMA_VERSION = 1

const Str = Type.String({ minLength: 1, maxLength: 65536 })
const Count = Type.Integer({ minimum: 0 })
const Port = Type.Integer({ minimum: 0, maximum: 65535 })
const Timestamp = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$' })
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false })

export const WebAccessRecordSchema = Strict({
  /** Request time from the log line (`$time_local`, `$time_iso8601`, `$msec`, `%t`), UTC. */
  '@timestamp': Timestamp,
  ecs: Strict({ version: Str }),
  event: Strict({
    /** Deterministic from host, source, file identity and byte offset (like audit events): a re-sent line keeps its id. */
    id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    /** Gap-free per `auditline.stream`. */
    sequence: Count,
    kind: Type.Literal('event'),
    category: Type.Tuple([Type.Literal('web')]),
    type: Type.Tuple([Type.Literal('access')]),
    dataset: Type.Literal('web.access'),
    /** `failure` for HTTP status ≥ 400, else `success`. */
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
    /** `$request_time` in nanoseconds. */
    duration: Type.Optional(Count),
    /** The raw log line: the anonymizer rewrites it for its own-format output and drops it otherwise. */
    original: Type.String({ minLength: 1, maxLength: 1048576 })
  }),
  auditline: Strict({
    schema: Type.Literal(WEB_ACCESS_SCHEMA_VERSION),
    /** `<collector host>/<source name>`: the stream `event.sequence` counts in. */
    stream: Str,
    class: Type.Literal('web'),
    /** Log format the line was read with: `combined`, `vhost_combined`, `custom`. */
    format: Str
  }),
  log: Strict({ file: Strict({ path: Str }), offset: Count }),
  /** The collector host (the web server's machine). */
  host: Strict({ name: Str }),
  /** The visitor: `ip` when the address is one (IPv4 or IPv6), always `address` as logged. */
  source: Strict({ address: Str, ip: Type.Optional(Str), port: Type.Optional(Port) }),
  /** HTTP basic-auth user (`$remote_user`, `%u`). */
  user: Type.Optional(Strict({ name: Str })),
  url: Type.Optional(Strict({
    /** The request target as sent (`/path?query`, or absolute-form), or the whole request when it is not HTTP. */
    original: Type.Optional(Str),
    path: Type.Optional(Str),
    /** Without the leading `?`. */
    query: Type.Optional(Str),
    /** The vhost: `$host`, `$server_name`, `%v`, or the source's `vhost` option. */
    domain: Type.Optional(Str),
    port: Type.Optional(Port),
    scheme: Type.Optional(Str)
  })),
  http: Type.Optional(Strict({
    /** `1.1` of `HTTP/1.1`. */
    version: Type.Optional(Str),
    request: Type.Optional(Strict({
      method: Type.Optional(Str),
      referrer: Type.Optional(Str),
      /** `X-Forwarded-For` as sent: a comma-separated list of addresses (or whatever the client put there). */
      x_forwarded_for: Type.Optional(Str),
      /** `$request_length`: request line, headers and body. */
      bytes: Type.Optional(Count)
    })),
    response: Type.Optional(Strict({
      status_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 999 })),
      /** `$bytes_sent`, `%O`: everything sent, headers included. */
      bytes: Type.Optional(Count),
      /** `$body_bytes_sent`, `%b`: the body only. */
      body: Type.Optional(Strict({ bytes: Count }))
    }))
  })),
  user_agent: Type.Optional(Strict({ original: Str }))
})

export type WebAccessRecord = Static<typeof WebAccessRecordSchema>

const check = new Ajv({ allErrors: false, strict: false }).compile(WebAccessRecordSchema)

/** Throws AUD_ERR_EVENT_INVALID (naming the field, never its value) when `value` is not a valid record. */
export function assertWebAccessRecord (value: unknown): asserts value is WebAccessRecord {
  if (!check(value)) {
    const e = check.errors?.[0]
    const where = e === undefined || e.instancePath === '' ? '(root) ' : e.instancePath.slice(1).replaceAll('/', '.') + ' '
    const what = e?.keyword === 'additionalProperties' ? `unknown field "${String(e.params.additionalProperty)}"` : (e?.message ?? 'invalid')
    throw new AuditError('AUD_ERR_EVENT_INVALID', [`${WEB_ACCESS_SCHEMA_VERSION} (web access record)`, where + what])
  }
}
