/**
 * Which daily indices have expired at a given `now`. Pure: index names and periods in, a plan out.
 *
 * An index `<prefix>-<class>-YYYY.MM.DD` holds the events of one UTC day (lib/elasticsearch.ts `indexName`). It is
 * expired when its *whole* day is older than the class's period: `now ≥ start of the next day + period`. Deleting
 * whole indices (never `_delete_by_query`) is what makes a deletion final, cheap and provable: the index is gone.
 */
import { CLASS_NAME_PATTERN } from './config.ts'

const DAY_MS = 86_400_000
const CLASS_RE = new RegExp(CLASS_NAME_PATTERN)
const DAILY_RE = /^(.+)-(\d{4})\.(\d{2})\.(\d{2})$/

export interface DailyIndex {
  index: string
  eventClass: string
  /** UTC day the index holds, `YYYY-MM-DD`. */
  day: string
  /** Start of that day (ms since the epoch). */
  dayStartMs: number
}

export interface ExpiredIndex extends DailyIndex {
  periodDays: number
  /** When the index became due: end of its day + period (RFC 3339). */
  expiredAt: string
}

export type KeepReason = 'not_expired' | 'no_policy' | 'not_daily'

export interface KeptIndex {
  index: string
  reason: KeepReason
  eventClass?: string
  /** For `not_expired`: when it will be (RFC 3339). */
  expiresAt?: string
}

export interface RetentionPlan {
  /** Oldest day first, then by name: deletions happen (and are recorded) in a stable order. */
  expired: ExpiredIndex[]
  kept: KeptIndex[]
}

/** Reads `<prefix>-<class>-YYYY.MM.DD`; undefined for any other name (other prefixes, invalid days, seals …). */
export function parseDailyIndex (prefix: string, index: string): DailyIndex | undefined {
  if (!index.startsWith(prefix + '-')) return undefined
  const m = DAILY_RE.exec(index.slice(prefix.length + 1))
  if (m === null) return undefined
  const [, eventClass, y, mo, d] = m as unknown as [string, string, string, string, string]
  if (!CLASS_RE.test(eventClass)) return undefined
  const dayStartMs = Date.UTC(Number(y), Number(mo) - 1, Number(d))
  const back = new Date(dayStartMs)
  // Date.UTC rolls 2026.02.30 over to March 2: such a name was not made by indexName.
  if (back.getUTCFullYear() !== Number(y) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d)) return undefined
  return { index, eventClass, day: `${y}-${mo}-${d}`, dayStartMs }
}

/** End of the index's day + period: the first instant at which every event it can hold is older than the period. */
export function expiresAtMs (daily: DailyIndex, periodDays: number): number {
  return daily.dayStartMs + DAY_MS + periodDays * DAY_MS
}

/**
 * Plans a retention run. Indices whose names are not daily indices of `prefix`, and classes without a period
 * in `periods`, are kept (reported, never deleted): retention deletes only what a policy names.
 */
export function planRetention (indices: readonly string[], periods: Readonly<Record<string, number>>, prefix: string, now: Date): RetentionPlan {
  const nowMs = now.getTime()
  const expired: ExpiredIndex[] = []
  const kept: KeptIndex[] = []
  for (const index of indices) {
    const daily = parseDailyIndex(prefix, index)
    if (daily === undefined) { kept.push({ index, reason: 'not_daily' }); continue }
    const periodDays = Object.hasOwn(periods, daily.eventClass) ? periods[daily.eventClass] : undefined
    if (periodDays === undefined) { kept.push({ index, reason: 'no_policy', eventClass: daily.eventClass }); continue }
    const due = expiresAtMs(daily, periodDays)
    if (nowMs >= due) expired.push({ ...daily, periodDays, expiredAt: new Date(due).toISOString() })
    else kept.push({ index, reason: 'not_expired', eventClass: daily.eventClass, expiresAt: new Date(due).toISOString() })
  }
  expired.sort((a, b) => a.dayStartMs - b.dayStartMs || (a.index < b.index ? -1 : a.index > b.index ? 1 : 0))
  kept.sort((a, b) => (a.index < b.index ? -1 : a.index > b.index ? 1 : 0))
  return { expired, kept }
}
