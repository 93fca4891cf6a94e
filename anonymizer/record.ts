/**
 * The anonymized web access record (`web.access.anon.v1`): an allow-list of the raw record's fields, every
 * string that can hold an address rewritten, `event.original` and the remote user dropped, and a per-epoch
 * visitor id in place of the client address for counting. Nothing else of the raw record survives.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { AuditError } from '../lib/errors.ts'

export const ANON_SCHEMA_VERSION = 1

const Str = Type.String({ minLength: 1, maxLength: 65536 })
const Count = Type.Integer({ minimum: 0 })
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false })

export const AnonymizedAccessSchema = Strict({
  '@timestamp': Str,
  ecs: Strict({ version: Str }),
  event: Strict({
    id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    sequence: Count,
    kind: Type.Literal('event'),
    category: Type.Tuple([Type.Literal('web')]),
    type: Type.Tuple([Type.Literal('access')]),
    dataset: Type.Literal('web.access'),
    outcome: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('failure')])),
    duration: Type.Optional(Count)
  }),
  auditline: Strict({
    schema: Type.Literal(ANON_SCHEMA_VERSION),
    stream: Str,
    class: Type.Literal('web'),
    format: Str,
    /** Epoch whose key rewrote this record (records of different epochs are not linkable). */
    epoch: Type.Integer({ minimum: 0 })
  }),
  host: Strict({ name: Str }),
  /** `ip` is the rewritten address (same family); `address` the rewritten text as logged. */
  source: Strict({ address: Str, ip: Type.Optional(Str) }),
  url: Type.Optional(Strict({
    original: Type.Optional(Str),
    path: Type.Optional(Str),
    query: Type.Optional(Str),
    domain: Type.Optional(Str),
    port: Type.Optional(Count),
    scheme: Type.Optional(Str)
  })),
  http: Type.Optional(Strict({
    version: Type.Optional(Str),
    request: Type.Optional(Strict({
      method: Type.Optional(Str),
      referrer: Type.Optional(Str),
      x_forwarded_for: Type.Optional(Str),
      bytes: Type.Optional(Count)
    })),
    response: Type.Optional(Strict({
      status_code: Type.Optional(Type.Integer({ minimum: 0, maximum: 999 })),
      bytes: Type.Optional(Count),
      body: Type.Optional(Strict({ bytes: Count }))
    }))
  })),
  user_agent: Type.Optional(Strict({
    original: Str,
    name: Str,
    version: Type.Optional(Str),
    os: Strict({ name: Str }),
    device: Strict({ type: Str })
  })),
  web: Strict({
    /** The site the request was for (vhost, else the collector host): the statistics key. */
    site: Str,
    /** Keyed hash (epoch key) of client address, user agent and site: counts unique visitors, links nothing across epochs. */
    visitor_id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
    bot: Type.Boolean()
  })
})

export type AnonymizedAccess = Static<typeof AnonymizedAccessSchema>

const check = new Ajv({ allErrors: false, strict: false }).compile(AnonymizedAccessSchema)

export function assertAnonymized (value: unknown): asserts value is AnonymizedAccess {
  if (!check(value)) {
    const e = check.errors?.[0]
    const where = e === undefined || e.instancePath === '' ? '(root) ' : e.instancePath.slice(1).replaceAll('/', '.') + ' '
    throw new AuditError('AUD_ERR_EVENT_INVALID', [`${ANON_SCHEMA_VERSION} (anonymized web access)`, where + (e?.message ?? 'invalid')])
  }
}
