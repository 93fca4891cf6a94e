/**
 * What the query API needs from a store, in typed filters only: no store's query language crosses
 * this boundary (the embedded SQLite store of #7 implements the same interface).
 */
import type { AuditEvent } from '../../lib/ecs.ts'
import type { Granularity, StatsDocument } from '../../anonymizer/stats/record.ts'

export interface EventFilter {
  from?: string
  to?: string
  category?: string[]
  action?: string[]
  outcome?: string[]
  user?: string[]
  /** An IP or a CIDR block. */
  sourceIp?: string
  host?: string[]
  eventClass?: string[]
  ticket?: string
  customer?: string
  /** Free text: matched as plain words, never parsed as a query language. */
  text?: string
  /** A session or connection id: `ssh.session_id`, `ftp.session_id` or `db.connection_id`. */
  session?: string
  /** A collector stream (`auditline.stream`, e.g. `web01/var/log/auth.log`). */
  stream?: string
}

export interface EventPage {
  events: AuditEvent[]
  /** Total hits (exact up to 10,000, then a lower bound). */
  total: number
  totalIsLowerBound: boolean
  /** Opaque cursor of the last hit, for the next page. */
  next?: string
}

/** What `/v1/events/counts` groups by: a keyword field's values, or UTC days. */
export type CountBy = 'event.action' | 'user.name' | 'host.name' | 'day'

export interface EventCounts {
  /** Most frequent first (ties by key) for fields; every UTC day of the range in order (zeros included) for `day`. */
  buckets: Array<{ key: string, count: number }>
  /** Matching events (exact). */
  total: number
  /** Matching events whose value is not among `buckets` (a field's further values, or no value). */
  other: number
}

/**
 * The statistics sites a caller may read: all of them, or exact names plus name suffixes (`.example.com`
 * from a `*.example.com` tenant entry).
 */
export type SiteScope = { all: true } | { all: false, exact: string[], suffixes: string[] }

export interface SiteSummary {
  site: string
  /** The newest day document of the site (`partial` while the day is still open), if any. */
  lastDay?: { start: string, partial: boolean, hits: number, pageviews: number, visits: number, visitors: number }
}

export interface EventStore {
  searchEvents (filter: EventFilter, page: { size: number, order: 'asc' | 'desc', after?: string }): Promise<EventPage>
  /** Counts of the events matching `filter`, by a field (at most `size` buckets) or by UTC day within [from, to). */
  countEvents (filter: EventFilter, by: CountBy, opts: { size: number, from?: string, to?: string }): Promise<EventCounts>
  /** Sites with statistics documents in `scope`, by name, at most `limit` (then `truncated`). */
  listSites (scope: SiteScope, limit: number): Promise<{ sites: SiteSummary[], truncated: boolean }>
  /** The site's documents of one granularity with bucket start in [from, to), oldest first, at most `limit`. */
  siteStats (site: string, q: { granularity: Granularity, from: string, to: string, limit: number }): Promise<StatsDocument[]>
}
