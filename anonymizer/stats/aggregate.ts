/**
 * The statistics aggregator: anonymized web access records → one document per site × UTC hour and per
 * site × UTC day. Pure (no I/O, no clock): run.ts feeds it records with their Kafka position and decides when
 * to emit and commit. It only ever sees `AnonymizedAccess` records, so it cannot see a raw visitor address.
 *
 * Counting rules (docs/stats.md):
 * - hit: every record. Bytes: `http.response.body.bytes`, else `http.response.bytes`.
 * - pageview: method GET or HEAD, status 2xx or 304, path not an asset (extension of the last path segment in
 *   `staticExtensions`, query ignored), and not a bot (`web.bot`).
 * - unique visitors: distinct `web.visitor_id`. The id is a keyed hash of client address + user agent + site
 *   under the key of one UTC day, so per day it counts what GoAccess counts (IP + date + user agent).
 *   Because the id determines the user agent, browser / OS / device lists count each human visitor once.
 * - visit: a visitor's pageviews with gaps < `sessionGapMs` (30 min); counted in the bucket its first pageview
 *   falls in; its first pageview is its entry page. A visit never spans UTC midnight (the visitor id changes).
 * - referrer domains: host of the referrer of a pageview, only when it is not the site itself (a leading
 *   `www.` ignored on both sides).
 *
 * Event time and lateness: each Kafka partition has a watermark = newest event time seen on it − allowed
 * lateness. A bucket is due when the watermark passed its end; a record still updates its bucket while the
 * watermark is before bucket end + grace (then the bucket is due again); later it is too late for that bucket.
 * An hour and its day are judged separately: a record too late for its hour may still count in its day.
 */
import type { AnonymizedAccess } from '../record.ts'
import { statsDocumentId, STATS_SCHEMA_VERSION, type Granularity, type StatsDocument, type TopEntry } from './record.ts'

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000
/** Key under which a top list counts new keys once it tracks `maxKeysPerList` of them. */
export const OTHER_KEY = '(other)'

export interface AggregatorOptions {
  allowedLatenessMs: number
  graceMs: number
  sessionGapMs: number
  maxOpenBuckets: number
  topN: number
  maxKeysPerList: number
  staticExtensions: Iterable<string>
}

/** Where a record came from: its partition drives the watermark, its offset the commit point. */
export interface RecordPosition { partition: number, offset?: bigint }

/** `counted`: hour and day; `day_only`: too late for its hour; `too_late`: for both; `invalid`: no usable time. */
export type AddResult = 'counted' | 'day_only' | 'too_late' | 'invalid'

/** A document to send; call `ack()` once the broker acknowledged it. */
export interface Emission { readonly doc: StatsDocument, ack (): void }

type StatusClass = keyof StatsDocument['status']

/** The status class a response code counts under. */
export function statusClass (code: number | undefined): StatusClass {
  if (code === undefined || code < 200 || code >= 600) return 'other'
  return `${Math.floor(code / 100)}xx` as StatusClass
}

/** True when the last path segment's extension (lower-cased) is an asset extension. */
export function isStaticPath (path: string, extensions: ReadonlySet<string>): boolean {
  const segment = path.slice(path.lastIndexOf('/') + 1)
  const dot = segment.lastIndexOf('.')
  return dot >= 0 && dot < segment.length - 1 && extensions.has(segment.slice(dot + 1).toLowerCase())
}

/** The pageview rule (see the module comment). */
export function isPageview (rec: AnonymizedAccess, extensions: ReadonlySet<string>): boolean {
  const method = rec.http?.request?.method
  if (method !== 'GET' && method !== 'HEAD') return false
  const status = rec.http?.response?.status_code
  if (status === undefined || !((status >= 200 && status < 300) || status === 304)) return false
  if (rec.web.bot) return false
  const path = rec.url?.path
  return path !== undefined && path.startsWith('/') && !isStaticPath(path, extensions)
}

const URL_HOST = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)/
const bare = (host: string): string => host.startsWith('www.') ? host.slice(4) : host

/** The referrer's host (lower case) when it is another site than `site`; undefined for internal or no referrer. */
export function externalReferrerHost (referrer: string | undefined, site: string): string | undefined {
  if (referrer === undefined) return undefined
  const m = URL_HOST.exec(referrer)
  let host = m?.[1]?.toLowerCase()
  if (host === undefined || host === '') return undefined
  if (host.endsWith('.')) host = host.slice(0, -1)
  return bare(host) === bare(site.toLowerCase()) ? undefined : host
}

/** Counts per key, bounded: past `max` distinct keys, new keys count under OTHER_KEY. */
class KeyCounter {
  readonly #m = new Map<string, number>()
  readonly #max: number
  constructor (max: number) { this.#max = max }

  add (key: string): void {
    const k = this.#m.has(key) || this.#m.size < this.#max ? key : OTHER_KEY
    this.#m.set(k, (this.#m.get(k) ?? 0) + 1)
  }

  /** Most frequent first; ties by key in code-unit order, so the list is the same however records arrived. */
  top (n: number): TopEntry[] {
    return [...this.#m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, n).map(([key, count]) => ({ key, count }))
  }
}

class Bucket {
  hits = 0
  bytes = 0
  pageviews = 0
  readonly status: Record<StatusClass, number> = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 }
  humanHits = 0
  botHits = 0
  readonly humans = new Set<string>()
  readonly bots = new Set<string>()
  readonly pages: KeyCounter
  readonly referrers: KeyCounter
  readonly browsers: KeyCounter
  readonly os: KeyCounter
  readonly devices: KeyCounter
  /** Bumped on every change; `emitted` is the version the broker acknowledged (-1: never). */
  version = 0
  emitted = -1
  readonly partitions = new Set<number>()

  constructor (readonly granularity: Granularity, readonly start: number, readonly end: number, maxKeys: number) {
    this.pages = new KeyCounter(maxKeys)
    this.referrers = new KeyCounter(maxKeys)
    this.browsers = new KeyCounter(maxKeys)
    this.os = new KeyCounter(maxKeys)
    this.devices = new KeyCounter(maxKeys)
  }
}

interface Session { start: number, end: number, entry: string }

/** One site's UTC day: its day bucket, its open hour buckets, and its visitors' sessions. */
interface Group {
  site: string
  day: Bucket
  hours: Map<number, Bucket>
  sessions: Map<string, Session[]>
  /** Lowest offset per partition of a record counted here: what a restart must re-read. */
  firstOffsets: Map<number, bigint>
}

interface Facts {
  visitor: string
  bot: boolean
  bytes: number
  status: StatusClass
  browser: string
  os: string
  device: string
  /** Set when the record is a pageview. */
  page: string | undefined
  referrer: string | undefined
}

interface SessionStats { visits: number, entries: KeyCounter }

export class StatsAggregator {
  readonly #o: Omit<AggregatorOptions, 'staticExtensions'>
  readonly #static: ReadonlySet<string>
  readonly #groups = new Map<string, Group>()
  readonly #watermarks = new Map<number, number>()
  #open = 0

  constructor (opts: AggregatorOptions) {
    const { staticExtensions, ...rest } = opts
    this.#o = rest
    this.#static = new Set([...staticExtensions].map(e => e.toLowerCase()))
  }

  /** Buckets in memory (hours and days), including those waiting for their last emission. */
  get openBuckets (): number { return this.#open }

  watermark (partition: number): number { return this.#watermarks.get(partition) ?? -Infinity }

  /** Moves a partition's watermark forward (never back): idle partitions, restored state, early closing. */
  raiseWatermark (partition: number, to: number): void {
    if (to > this.watermark(partition)) this.#watermarks.set(partition, to)
  }

  add (rec: AnonymizedAccess, pos: RecordPosition = { partition: 0 }): AddResult {
    const t = Date.parse(rec['@timestamp'])
    if (!Number.isFinite(t)) return 'invalid'
    const p = pos.partition
    const w = this.watermark(p)
    const dayStart = Math.floor(t / DAY_MS) * DAY_MS
    if (w >= dayStart + DAY_MS + this.#o.graceMs) return 'too_late'
    const site = rec.web.site
    const key = `${dayStart}\u0000${site}`
    let g = this.#groups.get(key)
    if (g === undefined) {
      g = { site, day: this.#bucket('day', dayStart, DAY_MS), hours: new Map(), sessions: new Map(), firstOffsets: new Map() }
      this.#groups.set(key, g)
    }
    if (pos.offset !== undefined) {
      const first = g.firstOffsets.get(p)
      if (first === undefined || pos.offset < first) g.firstOffsets.set(p, pos.offset)
    }
    const hourStart = Math.floor(t / HOUR_MS) * HOUR_MS
    let hour: Bucket | undefined
    if (w < hourStart + HOUR_MS + this.#o.graceMs) {
      hour = g.hours.get(hourStart)
      if (hour === undefined) {
        hour = this.#bucket('hour', hourStart, HOUR_MS)
        g.hours.set(hourStart, hour)
      }
    }
    const f = this.#facts(rec)
    apply(g.day, f, p)
    if (hour !== undefined) apply(hour, f, p)
    if (f.page !== undefined) this.#visit(g, f.visitor, t, f.page)
    this.raiseWatermark(p, t - this.#o.allowedLatenessMs)
    return hour === undefined ? 'day_only' : 'counted'
  }

  /**
   * Documents to send now: buckets whose watermark passed their end (or every bucket with `all`, at
   * shutdown) and that changed since their last acknowledged emission. `hold(partition)` keeps back buckets
   * fed by a partition that is still being replayed after a restart (their state is incomplete).
   */
  due (opts: { all?: boolean, hold?: (partition: number) => boolean } = {}): Emission[] {
    const out: Emission[] = []
    for (const g of this.#groups.values()) {
      let sessions: Map<number, SessionStats> | undefined
      for (const b of [g.day, ...g.hours.values()]) {
        if (b.version === b.emitted) continue
        const closed = this.#bucketWatermark(b) >= b.end
        if (!closed && opts.all !== true) continue
        if (opts.hold !== undefined && [...b.partitions].some(opts.hold)) continue
        sessions ??= this.#sessionStats(g)
        const version = b.version
        out.push({ doc: this.#render(g, b, sessions, !closed), ack: () => { if (version > b.emitted) b.emitted = version } })
      }
    }
    return out
  }

  /**
   * Drops buckets that are final: acknowledged in their latest version and past end + grace (no record can
   * change them any more). Returns how many were dropped.
   */
  expire (): number {
    let dropped = 0
    for (const [key, g] of this.#groups) {
      for (const [start, h] of g.hours) {
        if (this.#final(h)) { g.hours.delete(start); dropped++ }
      }
      if (g.hours.size === 0 && this.#final(g.day)) { this.#groups.delete(key); dropped++ }
    }
    this.#open -= dropped
    return dropped
  }

  /**
   * Keeps the buckets still accepting records at or under `maxOpenBuckets`: while there are more, the
   * watermark of the partition(s) feeding the oldest open day jumps to that day's end + grace, which closes
   * that day (and anything older) early. Returns how many days were closed so.
   */
  enforceLimit (): number {
    let closed = 0
    for (;;) {
      let live = 0
      let oldest: Group | undefined
      for (const g of this.#groups.values()) {
        for (const b of [g.day, ...g.hours.values()]) if (!this.#pastGrace(b)) live++
        if (!this.#pastGrace(g.day) && (oldest === undefined || g.day.start < oldest.day.start)) oldest = g
      }
      if (live <= this.#o.maxOpenBuckets || oldest === undefined) return closed
      for (const p of oldest.day.partitions) this.raiseWatermark(p, oldest.day.end + this.#o.graceMs)
      closed++
    }
  }

  /**
   * The offset to commit for a partition: the lowest offset any bucket in memory still needs (a restart must
   * rebuild it from all its records), else `next` (the offset after the last record processed).
   */
  commitPoint (partition: number, next: bigint): bigint {
    let min = next
    for (const g of this.#groups.values()) {
      const first = g.firstOffsets.get(partition)
      if (first !== undefined && first < min) min = first
    }
    return min
  }

  /** Forgets everything (after a rebalance the state is rebuilt from the committed offsets). */
  clear (): void {
    this.#groups.clear()
    this.#watermarks.clear()
    this.#open = 0
  }

  #bucket (granularity: Granularity, start: number, length: number): Bucket {
    this.#open++
    return new Bucket(granularity, start, start + length, this.#o.maxKeysPerList)
  }

  /** The watermark that closes a bucket: the lowest of the partitions feeding it (normally just one: records are keyed by site). */
  #bucketWatermark (b: Bucket): number {
    let w = Infinity
    for (const p of b.partitions) w = Math.min(w, this.watermark(p))
    return w === Infinity ? -Infinity : w
  }

  #pastGrace (b: Bucket): boolean { return this.#bucketWatermark(b) >= b.end + this.#o.graceMs }
  #final (b: Bucket): boolean { return b.emitted === b.version && this.#pastGrace(b) }

  #facts (rec: AnonymizedAccess): Facts {
    const res = rec.http?.response
    const page = isPageview(rec, this.#static) ? rec.url?.path : undefined
    return {
      visitor: rec.web.visitor_id,
      bot: rec.web.bot,
      bytes: res?.body?.bytes ?? res?.bytes ?? 0,
      status: statusClass(res?.status_code),
      browser: rec.user_agent?.name ?? 'unknown',
      os: rec.user_agent?.os.name ?? 'unknown',
      device: rec.user_agent?.device.type ?? 'unknown',
      page,
      referrer: page === undefined ? undefined : externalReferrerHost(rec.http?.request?.referrer, rec.web.site)
    }
  }

  /**
   * Adds a pageview to its visitor's sessions, kept as disjoint intervals [first, last] sorted by time:
   * a pageview closer than the gap to one or two sessions joins (and merges) them. Exact whatever order
   * records arrive in. Hours whose visits or entry pages change are marked for re-emission.
   */
  #visit (g: Group, visitor: string, t: number, page: string): void {
    const gap = this.#o.sessionGapMs
    let list = g.sessions.get(visitor)
    if (list === undefined) { list = []; g.sessions.set(visitor, list) }
    let i = 0
    while (i < list.length && (list[i] as Session).end + gap <= t) i++
    let j = i
    while (j < list.length && (list[j] as Session).start - gap < t) j++
    const changed: number[] = []
    if (i === j) {
      list.splice(i, 0, { start: t, end: t, entry: page })
      changed.push(t)
    } else {
      const first = list[i] as Session
      const last = list[j - 1] as Session
      // Two pageviews in the same millisecond (logs have seconds): the smaller path is the entry, whatever
      // arrived first, so that the result does not depend on arrival order.
      const entry = t < first.start || (t === first.start && page < first.entry) ? page : first.entry
      const merged: Session = { start: Math.min(t, first.start), end: Math.max(t, last.end), entry }
      if (j - i > 1 || merged.start !== first.start || merged.entry !== first.entry) {
        for (let k = i; k < j; k++) changed.push((list[k] as Session).start)
        changed.push(merged.start)
      }
      list.splice(i, j - i, merged)
    }
    for (const s of changed) {
      const h = g.hours.get(Math.floor(s / HOUR_MS) * HOUR_MS)
      if (h !== undefined) h.version++
    }
  }

  /** Visits and entry pages per hour start, and for the whole day under key -1. */
  #sessionStats (g: Group): Map<number, SessionStats> {
    const out = new Map<number, SessionStats>()
    const at = (k: number): SessionStats => {
      let s = out.get(k)
      if (s === undefined) { s = { visits: 0, entries: new KeyCounter(this.#o.maxKeysPerList) }; out.set(k, s) }
      return s
    }
    for (const list of g.sessions.values()) {
      for (const s of list) {
        for (const k of [-1, Math.floor(s.start / HOUR_MS) * HOUR_MS]) {
          const st = at(k)
          st.visits++
          st.entries.add(s.entry)
        }
      }
    }
    return out
  }

  #render (g: Group, b: Bucket, sessions: Map<number, SessionStats>, partial: boolean): StatsDocument {
    const s = sessions.get(b.granularity === 'day' ? -1 : b.start)
    const n = this.#o.topN
    const start = new Date(b.start).toISOString()
    return {
      '@timestamp': start,
      id: statsDocumentId(g.site, b.granularity, start),
      schema: STATS_SCHEMA_VERSION,
      site: g.site,
      granularity: b.granularity,
      period: { start, end: new Date(b.end).toISOString() },
      partial,
      hits: b.hits,
      bytes: b.bytes,
      pageviews: b.pageviews,
      visits: s?.visits ?? 0,
      visitors: b.humans.size + b.bots.size,
      status: { ...b.status },
      humans: { hits: b.humanHits, visitors: b.humans.size },
      bots: { hits: b.botHits, visitors: b.bots.size },
      top: {
        pages: b.pages.top(n),
        entry_pages: s?.entries.top(n) ?? [],
        referrer_domains: b.referrers.top(n),
        browsers: b.browsers.top(n),
        os: b.os.top(n),
        devices: b.devices.top(n)
      }
    }
  }
}

function apply (b: Bucket, f: Facts, partition: number): void {
  b.hits++
  b.bytes += f.bytes
  b.status[f.status]++
  if (f.bot) {
    b.botHits++
    b.bots.add(f.visitor)
  } else {
    b.humanHits++
    if (!b.humans.has(f.visitor)) {
      b.humans.add(f.visitor)
      b.browsers.add(f.browser)
      b.os.add(f.os)
      b.devices.add(f.device)
    }
  }
  if (f.page !== undefined) {
    b.pageviews++
    b.pages.add(f.page)
    if (f.referrer !== undefined) b.referrers.add(f.referrer)
  }
  b.version++
  b.partitions.add(partition)
}

/** Convenience for batch use and tests: every record in, every bucket out (sorted by site, granularity, start). */
export function aggregateAll (records: Iterable<AnonymizedAccess>, opts: AggregatorOptions): StatsDocument[] {
  const agg = new StatsAggregator(opts)
  for (const r of records) agg.add(r)
  return agg.due({ all: true }).map(e => e.doc)
    .sort((a, b) => a.site < b.site ? -1 : a.site > b.site ? 1 : a.granularity < b.granularity ? -1 : a.granularity > b.granularity ? 1 : a['@timestamp'] < b['@timestamp'] ? -1 : 1)
}
