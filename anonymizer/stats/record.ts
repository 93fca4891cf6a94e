/**
 * The statistics document (`stats.web.v1`, indexed into `<prefix>-stats-YYYY.MM.DD`): the counts of one site
 * for one UTC hour or one UTC day, built only from anonymized records (docs/stats.md has the counting rules).
 * Its id is derived from site, granularity and bucket start, so a re-emitted (updated) document overwrites
 * the earlier one wherever it is stored.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { AuditError } from '../../lib/errors.ts'
import { eventId } from '../../lib/ecs.ts'

export const STATS_SCHEMA_VERSION = 1

const Str = Type.String({ minLength: 1, maxLength: 65536 })
const Count = Type.Integer({ minimum: 0 })
const Iso = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$' })
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false })

/** A top list: most frequent first, ties by key (byte order), at most `stats.topN` entries. */
const TopList = Type.Array(Strict({ key: Str, count: Count }), { maxItems: 1000 })

export const GRANULARITIES = ['hour', 'day'] as const
export type Granularity = typeof GRANULARITIES[number]

export const StatsDocumentSchema = Strict({
  /** Bucket start (UTC), the same as `period.start`. */
  '@timestamp': Iso,
  /** `statsDocumentId(site, granularity, start)`: 32 hex digits. */
  id: Type.String({ pattern: '^[0-9a-f]{32}$' }),
  schema: Type.Literal(STATS_SCHEMA_VERSION),
  /** The site (`web.site` of the anonymized records: the vhost, else the collector host). */
  site: Str,
  granularity: Type.Union(GRANULARITIES.map(g => Type.Literal(g))),
  period: Strict({ start: Iso, end: Iso }),
  /**
   * True when the document was emitted before the watermark passed the bucket's end (at shutdown): the
   * bucket was still open and a later emission will complete it.
   */
  partial: Type.Boolean(),
  /** Every request, bots included. */
  hits: Count,
  /** Response body bytes (`http.response.body.bytes`, else `http.response.bytes`) of every request. */
  bytes: Count,
  /** Requests that count as a page view (docs/stats.md: GET/HEAD, 2xx or 304, not an asset, not a bot). */
  pageviews: Count,
  /** Visits that started in this bucket: a visitor's pageviews with gaps under `stats.sessionGapMs`. */
  visits: Count,
  /** Distinct `web.visitor_id` among all requests (humans + bots). */
  visitors: Count,
  status: Strict({ '2xx': Count, '3xx': Count, '4xx': Count, '5xx': Count, other: Count }),
  humans: Strict({ hits: Count, visitors: Count }),
  bots: Strict({ hits: Count, visitors: Count }),
  top: Strict({
    /** Pageviews per path (without query). */
    pages: TopList,
    /** Visits per first page (path). */
    entry_pages: TopList,
    /** Pageviews per external referrer host. */
    referrer_domains: TopList,
    /** Human visitors per browser family (`user_agent.name`). */
    browsers: TopList,
    /** Human visitors per OS family (`user_agent.os.name`). */
    os: TopList,
    /** Human visitors per device type (`user_agent.device.type`). */
    devices: TopList
  })
})

export type StatsDocument = Static<typeof StatsDocumentSchema>
export type TopEntry = StatsDocument['top']['pages'][number]

/** The deterministic id: the same bucket always gets the same id, so re-emits overwrite. */
export function statsDocumentId (site: string, granularity: Granularity, start: number | string): string {
  return eventId('stats', site, granularity, typeof start === 'number' ? new Date(start).toISOString() : start)
}

const check = new Ajv({ allErrors: false, strict: false }).compile(StatsDocumentSchema)

/** Throws AUD_ERR_EVENT_INVALID naming the field when `value` is not a statistics document. */
export function assertStatsDocument (value: unknown): asserts value is StatsDocument {
  if (!check(value)) {
    const e = check.errors?.[0]
    const where = e === undefined || e.instancePath === '' ? '(root) ' : e.instancePath.slice(1).replaceAll('/', '.') + ' '
    const what = e?.keyword === 'additionalProperties' ? `unknown field "${String(e.params.additionalProperty)}"` : (e?.message ?? 'invalid')
    throw new AuditError('AUD_ERR_EVENT_INVALID', [`${STATS_SCHEMA_VERSION} (statistics document)`, where + what])
  }
}
