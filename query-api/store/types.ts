/**
 * What the query API needs from a store, in typed filters only: no store's query language crosses
 * this boundary (the embedded SQLite store of #7 implements the same interface).
 */
import type { AuditEvent } from '../../lib/ecs.ts'

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
}

export interface EventPage {
  events: AuditEvent[]
  /** Total hits (exact up to 10,000, then a lower bound). */
  total: number
  totalIsLowerBound: boolean
  /** Opaque cursor of the last hit, for the next page. */
  next?: string
}

export interface EventStore {
  searchEvents (filter: EventFilter, page: { size: number, order: 'asc' | 'desc', after?: string }): Promise<EventPage>
}
