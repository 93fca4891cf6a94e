/**
 * Statistics documents in the shape the statistics stage writes (anonymizer/stats/record.ts), for tests of
 * the statistics feed. Every document is checked against the stage's own schema.
 */
import { assertStatsDocument, statsDocumentId, type Granularity, type StatsDocument, type TopEntry } from '../../anonymizer/stats/record.ts'

const HOUR = 3_600_000
const DAY = 86_400_000

export interface StatsDocInput {
  site: string
  granularity: Granularity
  /** Bucket start (UTC, on the hour or midnight). */
  start: string
  hits?: number
  pageviews?: number
  visits?: number
  visitors?: number
  bytes?: number
  partial?: boolean
  top?: Partial<StatsDocument['top']>
}

export function statsDoc (i: StatsDocInput): StatsDocument {
  const startMs = Date.parse(i.start)
  const start = new Date(startMs).toISOString()
  const end = new Date(startMs + (i.granularity === 'hour' ? HOUR : DAY)).toISOString()
  const hits = i.hits ?? 100
  const visitors = i.visitors ?? 10
  const [s3, s4, s5] = [Math.floor(hits * 0.05), Math.floor(hits * 0.04), Math.floor(hits * 0.01)]
  const botHits = Math.floor(hits / 5)
  const botVisitors = Math.min(botHits, Math.floor(visitors / 5))
  const e = (list: TopEntry[] | undefined): TopEntry[] => list ?? []
  const doc: StatsDocument = {
    '@timestamp': start,
    id: statsDocumentId(i.site, i.granularity, start),
    schema: 1,
    site: i.site,
    granularity: i.granularity,
    period: { start, end },
    partial: i.partial ?? false,
    hits,
    bytes: i.bytes ?? hits * 1000,
    pageviews: i.pageviews ?? Math.floor(hits / 2),
    visits: i.visits ?? Math.floor(visitors * 1.5),
    visitors,
    status: { '2xx': hits - s3 - s4 - s5, '3xx': s3, '4xx': s4, '5xx': s5, other: 0 },
    humans: { hits: hits - botHits, visitors: visitors - botVisitors },
    bots: { hits: botHits, visitors: botVisitors },
    top: {
      pages: e(i.top?.pages),
      entry_pages: e(i.top?.entry_pages),
      referrer_domains: e(i.top?.referrer_domains),
      browsers: e(i.top?.browsers),
      os: e(i.top?.os),
      devices: e(i.top?.devices)
    }
  }
  assertStatsDocument(doc)
  return doc
}
