/**
 * Turns the statistics documents of one site and range into the feed's answer: a time-ordered series,
 * totals of the additive counts, and top lists merged over the range. Pure.
 *
 * Merging is exact for the counts each list holds per bucket (pageviews, visits) only where a key made every
 * bucket's top list; a key cut from some buckets' lists (below `stats.topN` there) is undercounted, so merged
 * counts are lower bounds. Browsers, OS and devices count visitors per bucket: merged over days, a visitor
 * counts once per day it came (visitor ids are per day, docs/stats.md); over hours, once per hour.
 */
import type { Granularity, StatsDocument, TopEntry } from '../anonymizer/stats/record.ts'

export const TOP_LISTS = ['pages', 'entry_pages', 'referrer_domains', 'browsers', 'os', 'devices'] as const
export type TopListName = typeof TOP_LISTS[number]

export interface SeriesPoint {
  start: string
  end: string
  partial: boolean
  hits: number
  pageviews: number
  visits: number
  visitors: number
  bytes: number
  status: StatsDocument['status']
  humans: StatsDocument['humans']
  bots: StatsDocument['bots']
}

export interface SiteStats {
  site: string
  granularity: Granularity
  from: string
  to: string
  series: SeriesPoint[]
  /** Sums over the series. Visitors are left out: visitor ids are per day, so visitors do not add up. */
  totals: { hits: number, pageviews: number, visits: number, bytes: number, status: StatsDocument['status'] }
  top: Record<TopListName, TopEntry[]>
}

/** Sums the counts of each key over `lists`; most frequent first, ties by key (code-unit order), at most `n`. */
export function mergeTop (lists: ReadonlyArray<readonly TopEntry[]>, n: number): TopEntry[] {
  const sum = new Map<string, number>()
  for (const list of lists) for (const e of list) sum.set(e.key, (sum.get(e.key) ?? 0) + e.count)
  return [...sum].map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, n)
}

export function siteStatsOf (site: string, granularity: Granularity, from: string, to: string, docs: readonly StatsDocument[], topN: number): SiteStats {
  const series = [...docs].sort((a, b) => a.period.start < b.period.start ? -1 : a.period.start > b.period.start ? 1 : 0).map(d => ({
    start: d.period.start,
    end: d.period.end,
    // Elasticsearch maps `partial` as keyword; _source keeps what was indexed, a boolean or its string.
    partial: String(d.partial) === 'true',
    hits: d.hits,
    pageviews: d.pageviews,
    visits: d.visits,
    visitors: d.visitors,
    bytes: d.bytes,
    status: d.status,
    humans: d.humans,
    bots: d.bots
  }))
  const totals = { hits: 0, pageviews: 0, visits: 0, bytes: 0, status: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 } }
  for (const p of series) {
    totals.hits += p.hits
    totals.pageviews += p.pageviews
    totals.visits += p.visits
    totals.bytes += p.bytes
    for (const k of Object.keys(totals.status) as Array<keyof typeof totals.status>) totals.status[k] += p.status[k]
  }
  const top = Object.fromEntries(TOP_LISTS.map(name => [name, mergeTop(docs.map(d => d.top[name]), topN)])) as Record<TopListName, TopEntry[]>
  return { site, granularity, from, to, series, totals, top }
}
