/**
 * The embedded (SQLite) implementation of the query API's store (#7), with the observable behaviour of the
 * Elasticsearch store: typed filters become SQL over the filter columns of `events` that the write side
 * derives at insert (indexer/sqlite/schema.ts, indexer/sqlite/store.ts), the same (@timestamp, event.id) sort
 * and cursors, totals exact up to 10,000. SQL is assembled from fixed fragments only (column names from the
 * maps below); every value is a `?` parameter. The SQL text therefore names the query shape, and each shape is
 * prepared once and cached.
 */
import type Database from 'better-sqlite3'
import type { Granularity, StatsDocument } from '../../anonymizer/stats/record.ts'
import { cidrRange } from '../../indexer/sqlite/ip.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import { AuditError } from '../../lib/errors.ts'
import type { SealCheckpoint } from '../../lib/seal.ts'
import type { SealSource } from '../exports.ts'
import { decodeCursor, encodeCursor } from './elasticsearch.ts'
import type { CountBy, EventCounts, EventFilter, EventPage, EventStore, SiteScope, SiteSummary } from './types.ts'

/** Elasticsearch's `track_total_hits: 10000`: counted exactly up to here, then reported as a lower bound. */
const TRACK_TOTAL = 10_000
const DAY_MS = 86_400_000

/** List filters (any of the values) and the column each one reads. */
const LIST_COLUMNS = {
  action: 'e.action',
  outcome: 'e.outcome',
  user: 'e.user_name',
  host: 'e.host_name',
  eventClass: 'e.class'
} as const satisfies Partial<Record<keyof EventFilter, string>>

/** Single-value filters (exact) and their columns; `session` is ssh.session_id ?? ftp.session_id ?? db.connection_id. */
const EXACT_COLUMNS = {
  ticket: 'e.ticket',
  customer: 'e.customer',
  stream: 'e.stream',
  session: 'e.session'
} as const satisfies Partial<Record<keyof EventFilter, string>>

const COUNT_COLUMNS: Record<Exclude<CountBy, 'day'>, string> = {
  'event.action': 'e.action',
  'user.name': 'e.user_name',
  'host.name': 'e.host_name'
}

/** The UTC day number of `e.ts` (floor division, also right before 1970). */
const DAY_OF_TS = `(e.ts - ((e.ts % ${DAY_MS}) + ${DAY_MS}) % ${DAY_MS}) / ${DAY_MS}`

/**
 * A word of free text: letters, digits and combining marks; `_`, `.` and `'` between them keep one word
 * (`shop_prod`, `web01.example.com`), as Elasticsearch's standard analyzer does.
 */
const WORD = /[\p{L}\p{N}\p{M}]+(?:[_.'][\p{L}\p{N}\p{M}]+)*/gu

/**
 * An FTS5 query matching any word of `text` (multi_match's OR), each word a quoted phrase: no FTS5 syntax
 * (`OR`, `NEAR(`, `*`, `-`, `"`, column filters) of the user's ever reaches MATCH. A word the tokenizer splits
 * (`shop_prod`) is matched as adjacent tokens. Undefined when `text` has no word.
 */
function ftsQuery (text: string): string | undefined {
  const words = text.match(WORD)
  return words === null ? undefined : [...new Set(words)].map(w => `"${w}"`).join(' OR ')
}

/** Epoch ms of a filter's time; a text that is no time is the caller's bad parameter (Elasticsearch answers 400 too). */
function epochMs (param: string, text: string): number {
  const t = Date.parse(text)
  if (Number.isNaN(t)) throw new AuditError('AUD_ERR_API_BAD_REQUEST', [param, 'is not a date'])
  return t
}

interface Where { sql: string, params: unknown[] }

/** The WHERE clause (over `events e`) of a filter. An empty list filter is no filter, as in buildQuery. */
function whereOf (f: EventFilter): Where {
  const clauses: string[] = []
  const params: unknown[] = []
  const add = (sql: string, ...values: unknown[]): void => {
    clauses.push(sql)
    params.push(...values)
  }
  // One value compares with `=`, which lets an index on (column, ts) deliver the rows in time order.
  const anyOf = (column: string, values: readonly string[]): [string, unknown] => values.length === 1
    ? [`${column} = ?`, values[0]]
    : [`${column} IN (SELECT value FROM json_each(?))`, JSON.stringify(values)]
  if (f.from !== undefined) add('e.ts >= ?', epochMs('from', f.from))
  if (f.to !== undefined) add('e.ts < ?', epochMs('to', f.to))
  for (const [field, column] of Object.entries(LIST_COLUMNS) as Array<[keyof typeof LIST_COLUMNS, string]>) {
    const values = f[field]
    if (values !== undefined && values.length > 0) add(...anyOf(column, values))
  }
  if (f.category !== undefined && f.category.length > 0) {
    const [sql, value] = anyOf('c.category', f.category)
    add(`e.seq IN (SELECT c.seq FROM event_categories c WHERE ${sql})`, value)
  }
  if (f.sourceIp !== undefined) {
    // An address or a CIDR block, like a term query on an `ip` field: one byte range of the 16-byte column.
    const range = cidrRange(f.sourceIp)
    if (range === undefined) throw new AuditError('AUD_ERR_API_BAD_REQUEST', ['source.ip', 'must be an IP address or a CIDR block'])
    add('e.source_ip BETWEEN ? AND ?', range.lo, range.hi)
  }
  for (const [field, column] of Object.entries(EXACT_COLUMNS) as Array<[keyof typeof EXACT_COLUMNS, string]>) {
    const value = f[field]
    if (value !== undefined) add(`${column} = ?`, value)
  }
  if (f.text !== undefined) {
    const match = ftsQuery(f.text)
    // Text without any word matches nothing (multi_match's zero_terms_query `none`).
    if (match === undefined) add('FALSE')
    else add('e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)', match)
  }
  return { sql: clauses.length === 0 ? 'TRUE' : clauses.join(' AND '), params }
}

type LastDay = NonNullable<SiteSummary['lastDay']>

export class SqliteEventStore implements EventStore {
  readonly #statements = new Map<string, Database.Statement>()

  constructor (private readonly db: Database.Database) {}

  /** The prepared statement of `sql` (one per query shape), prepared on first use. */
  #statement (sql: string): Database.Statement {
    let s = this.#statements.get(sql)
    if (s === undefined) {
      s = this.db.prepare(sql)
      this.#statements.set(sql, s)
    }
    return s
  }

  /** The count of a `SELECT count(*) AS n …` query. */
  #count (sql: string, params: unknown[]): number {
    return (this.#statement(sql).get(...params) as { n: number }).n
  }

  async searchEvents (filter: EventFilter, page: { size: number, order: 'asc' | 'desc', after?: string }): Promise<EventPage> {
    const w = whereOf(filter)
    // Counting stops at TRACK_TOTAL + 1 rows, so that a broad filter over millions of events stays cheap.
    const counted = this.#count(`SELECT count(*) AS n FROM (SELECT 1 FROM events e WHERE ${w.sql} LIMIT ${TRACK_TOTAL + 1})`, w.params)
    const dir = page.order === 'asc' ? 'ASC' : 'DESC'
    // Like search_after: a cursor that does not decode is no cursor (the route refuses those before).
    const after = page.after === undefined ? undefined : decodeCursor(page.after)
    // The page is chosen on (ts, id) alone and only its rows' documents are read: a filter that matches many
    // events through an index not ordered by time (CIDR, free text, several values) sorts keys, not documents.
    const sql = `SELECT p.ts AS ts, p.id AS id, d.doc AS doc FROM (SELECT e.seq AS seq, e.ts AS ts, e.id AS id FROM events e WHERE ${w.sql}` +
      (after === undefined ? '' : ` AND (e.ts, e.id) ${page.order === 'asc' ? '>' : '<'} (?, ?)`) +
      ` ORDER BY e.ts ${dir}, e.id ${dir} LIMIT ?) p JOIN events d ON d.seq = p.seq ORDER BY p.ts ${dir}, p.id ${dir}`
    const rows = this.#statement(sql).all(...w.params, ...(after ?? []), page.size) as Array<{ ts: number, id: string, doc: string }>
    const last = rows[rows.length - 1]
    return {
      events: rows.map(r => JSON.parse(r.doc) as AuditEvent),
      total: Math.min(counted, TRACK_TOTAL),
      totalIsLowerBound: counted > TRACK_TOTAL,
      ...(last !== undefined && rows.length === page.size ? { next: encodeCursor([last.ts, last.id]) } : {})
    }
  }

  async countEvents (filter: EventFilter, by: CountBy, opts: { size: number, from?: string, to?: string }): Promise<EventCounts> {
    const w = whereOf(filter)
    const total = this.#count(`SELECT count(*) AS n FROM events e WHERE ${w.sql}`, w.params)
    let buckets: Array<{ key: string, count: number }>
    if (by === 'day') {
      const rows = this.#statement(`SELECT ${DAY_OF_TS} AS day, count(*) AS n FROM events e WHERE ${w.sql} GROUP BY day ORDER BY day`)
        .all(...w.params) as Array<{ day: number, n: number }>
      buckets = dayBuckets(rows, opts)
    } else {
      const column = COUNT_COLUMNS[by]
      if (column === undefined) throw new AuditError('AUD_ERR_API_BAD_REQUEST', ['by', `cannot count by ${String(by)}`])
      // Events without a value form no bucket (as in a terms aggregation) and count in `other`.
      const rows = this.#statement(`SELECT ${column} AS k, count(*) AS n FROM events e WHERE ${w.sql} AND ${column} IS NOT NULL GROUP BY ${column} ORDER BY n DESC, k ASC LIMIT ?`)
        .all(...w.params, opts.size) as Array<{ k: string, n: number }>
      buckets = rows.map(r => ({ key: r.k, count: r.n }))
    }
    return { buckets, total, other: total - buckets.reduce((n, b) => n + b.count, 0) }
  }

  /**
   * Sites are enumerated by skipping through the `stats_site` index (one seek per site, not one row per
   * document). That index compares case-insensitively, so names that differ only in case are listed once,
   * under the spelling of the first document of that name in the index.
   */
  async listSites (scope: SiteScope, limit: number): Promise<{ sites: SiteSummary[], truncated: boolean }> {
    if (!scope.all && scope.exact.length === 0 && scope.suffixes.length === 0) return { sites: [], truncated: false }
    // Distinct names by a skip scan over `stats_site_name` in byte order: names that differ only in case stay
    // apart and come in the order of Elasticsearch's terms aggregation on the keyword.
    const rows = this.#statement(`WITH RECURSIVE names(site) AS (
        SELECT (SELECT site FROM stats ORDER BY site LIMIT 1)
        UNION ALL
        SELECT (SELECT t.site FROM stats t WHERE t.site > n.site ORDER BY t.site LIMIT 1) FROM names n WHERE n.site IS NOT NULL
      )
      SELECT s.site AS site,
        (SELECT json_extract(d.doc, '$."@timestamp"', '$.partial', '$.hits', '$.pageviews', '$.visits', '$.visitors')
          FROM stats d WHERE d.site = s.site COLLATE NOCASE AND d.site = s.site AND d.granularity = 'day' ORDER BY d.ts DESC LIMIT 1) AS last
      FROM (SELECT site FROM names WHERE site IS NOT NULL AND (? OR site COLLATE NOCASE IN (SELECT value FROM json_each(?))
          OR EXISTS (SELECT 1 FROM json_each(?) p WHERE names.site LIKE p.value ESCAPE '\\'))
        ORDER BY site LIMIT ?) s
      ORDER BY s.site`)
      .all(
        scope.all ? 1 : 0,
        JSON.stringify(scope.all ? [] : scope.exact),
        // LIKE is case-insensitive (ASCII); `%` and `_` of a suffix are escaped so that they match themselves.
        JSON.stringify(scope.all ? [] : scope.suffixes.map(s => '%' + s.replace(/[\\%_]/g, c => '\\' + c))),
        limit + 1
      ) as Array<{ site: string, last: string | null }>
    const sites = rows.slice(0, limit).map(r => {
      if (r.last === null) return { site: r.site }
      const [start, partial, hits, pageviews, visits, visitors] = JSON.parse(r.last) as [string, unknown, number, number, number, number]
      // A JSON boolean (what the statistics stage writes) or a keyword's "true", as the Elasticsearch store accepts.
      const lastDay: LastDay = { start, partial: String(partial) === 'true', hits, pageviews, visits, visitors }
      return { site: r.site, lastDay }
    })
    return { sites, truncated: rows.length > limit }
  }

  async siteStats (site: string, q: { granularity: Granularity, from: string, to: string, limit: number }): Promise<StatsDocument[]> {
    // The NOCASE comparison seeks the `stats_site` index; the plain one keeps the match exact (a `term` query).
    const docs = this.#statement(`SELECT doc FROM stats WHERE site = ? COLLATE NOCASE AND site = ? AND granularity = ? AND ts >= ? AND ts < ?
      ORDER BY ts LIMIT ?`)
      .all(site, site, q.granularity, epochMs('from', q.from), epochMs('to', q.to), q.limit) as Array<{ doc: string }>
    return docs.map(d => JSON.parse(d.doc) as StatsDocument)
  }
}

/**
 * Day buckets like a date_histogram with min_doc_count 0: every day from the first to the last one with
 * events, gaps as zeros, widened to [from, to) when both are given (extended_bounds).
 */
function dayBuckets (rows: ReadonlyArray<{ day: number, n: number }>, opts: { from?: string, to?: string }): Array<{ key: string, count: number }> {
  const counts = new Map(rows.map(r => [r.day, r.n]))
  let lo = rows[0]?.day
  let hi = rows[rows.length - 1]?.day
  if (opts.from !== undefined && opts.to !== undefined) {
    const first = Math.floor(epochMs('from', opts.from) / DAY_MS)
    const last = Math.floor((epochMs('to', opts.to) - 1) / DAY_MS)
    if (first <= last) {
      lo = Math.min(lo ?? first, first)
      hi = Math.max(hi ?? last, last)
    }
  }
  const buckets: Array<{ key: string, count: number }> = []
  if (lo === undefined || hi === undefined) return buckets
  for (let d = lo; d <= hi; d++) buckets.push({ key: new Date(d * DAY_MS).toISOString().slice(0, 10), count: counts.get(d) ?? 0 })
  return buckets
}

/** Seal checkpoints from the `seals` table, through `seal_ids` for the checkpoints holding given events. */
export function sqliteSeals (db: Database.Database): SealSource {
  const holding = db.prepare<[string], { doc: string }>('SELECT doc FROM seals WHERE seq IN (SELECT seq FROM seal_ids WHERE id IN (SELECT value FROM json_each(?)))')
  // Only the root statements are shipped: the large arrays are dropped before they leave SQLite.
  const chain = db.prepare<[number, number], { doc: string }>(`SELECT json_remove(doc, '$.ids', '$.hashes', '$.timestamps') AS doc FROM seals
    WHERE seq BETWEEN ? AND ? ORDER BY seq`)
  return {
    async checkpointsHolding (ids) {
      return holding.all(JSON.stringify(ids)).map(r => JSON.parse(r.doc) as SealCheckpoint)
    },
    async chain (lo, hi) {
      return chain.all(lo, hi).map(r => JSON.parse(r.doc) as Omit<SealCheckpoint, 'ids' | 'hashes' | 'timestamps'>)
    }
  }
}
