/**
 * The embedded store's write side (#7): one SQLite file (schema.ts) in place of Elasticsearch and of the Kafka
 * topics between the stages. Every write is one transaction, committed with `synchronous=FULL`: once a call
 * returns, its rows survive a crash or power loss, so a collector may move its file checkpoint after it.
 *
 * The filter columns of `events` and the `events_fts` text are derived here, at insert, from the document; the
 * read side (query-api/store/sqlite.ts) relies on exactly these derivations (and on ip.ts for `source_ip`).
 */
import { randomUUID } from 'node:crypto'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { STATS_SCHEMA_VERSION, type StatsDocument } from '../../anonymizer/stats/record.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { SCHEMA_VERSION as EVENT_SCHEMA_VERSION, type AuditEvent } from '../../lib/ecs.ts'
import { AuditError } from '../../lib/errors.ts'
import type { SealLeaf } from '../elasticsearch/seal.ts'
import { ipBytes } from './ip.ts'
import { SCHEMA_SQL, SCHEMA_VERSION } from './schema.ts'

export interface IndexOp<T> { index: string, id: string, doc: T }

/** A custom-field value (`panel.*`, `ssh.*`, …) as a keyword column: scalars as text, lists and objects not. */
function keyword (v: unknown): string | null {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  return null
}

/**
 * The free text of an event: the fields the Elasticsearch store's `multi_match` searches, space-separated,
 * those present only. `events_fts` holds it under the event's seq.
 */
export function ftsText (doc: AuditEvent): string {
  const fields: unknown[] = [
    doc.event.reason, doc.db?.statement, doc.user?.name, doc.host?.name, doc.event.action, doc.file?.path,
    doc.file?.target_path, doc.process?.command_line, doc.panel?.object_id, doc.panel?.ticket_id
  ]
  return fields.flatMap(v => Array.isArray(v) ? v.map(keyword) : [keyword(v)]).filter(v => v !== null).join(' ')
}

/**
 * Epoch ms of a document's time. The schemas' patterns admit times no calendar has (`23:60:00`), which
 * Elasticsearch rejects per document; here such a document would fail its whole batch, so it is refused
 * before the batch is written (`schema` as in the schema checks' own errors).
 */
function epochMs (text: string, id: string, schema: string | number): number {
  const t = Date.parse(text)
  if (Number.isNaN(t)) throw new AuditError('AUD_ERR_EVENT_INVALID', [schema, `document ${id}: ${text} is not a valid time`], { meta: { id } })
  return t
}

type EventRow = [id: string, idx: string, ts: number, cls: string, action: string, outcome: string | null, user: string | null,
  host: string | null, ip: Buffer | null, ticket: string | null, customer: string | null, session: string | null,
  stream: string, sequence: number, doc: string]

function eventRow (op: IndexOp<AuditEvent>): EventRow {
  const d = op.doc
  const ip = d.source?.ip === undefined ? undefined : ipBytes(d.source.ip)
  return [
    op.id, op.index, epochMs(d['@timestamp'], op.id, EVENT_SCHEMA_VERSION), d.auditline.class, d.event.action, d.event.outcome ?? null,
    d.user?.name ?? null, d.host?.name ?? null, ip ?? null, keyword(d.panel?.ticket_id), keyword(d.panel?.customer),
    keyword(d.ssh?.session_id ?? d.ftp?.session_id ?? d.db?.connection_id), d.auditline.stream, d.event.sequence, JSON.stringify(d)
  ]
}

function prepare (db: Database.Database) {
  return {
    insertEvent: db.prepare<EventRow>(`INSERT OR IGNORE INTO events
      (id, idx, ts, class, action, outcome, user_name, host_name, source_ip, ticket, customer, session, stream, sequence, doc)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    insertCategory: db.prepare<[string, number | bigint]>('INSERT OR IGNORE INTO event_categories (category, seq) VALUES (?, ?)'),
    insertFts: db.prepare<[number | bigint, string]>('INSERT INTO events_fts (rowid, text) VALUES (?, ?)'),
    insertIndex: db.prepare<[string, string, 'events' | 'stats', string]>('INSERT OR IGNORE INTO indices (name, uuid, kind, created) VALUES (?, ?, ?, ?)'),
    lastSeq: db.prepare<[string], number>('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck(),
    upsertStats: db.prepare<[string, string, string, string, number, string]>(`INSERT INTO stats (id, idx, site, granularity, ts, doc) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET idx = excluded.idx, site = excluded.site, granularity = excluded.granularity, ts = excluded.ts, doc = excluded.doc`),
    insertDeadLetter: db.prepare<[string, string, string, string | null, number | null, string]>('INSERT INTO deadletters (ts, stage, code, stream, sequence, doc) VALUES (?, ?, ?, ?, ?, ?)'),
    getMeta: db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck(),
    setMeta: db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    insertAnon: db.prepare<[string, string]>('INSERT OR IGNORE INTO anon_log (id, value) VALUES (?, ?)'),
    readAnon: db.prepare<[number, number], { seq: number, value: string }>('SELECT seq, value FROM anon_log WHERE seq > ? ORDER BY seq LIMIT ?'),
    trimAnon: db.prepare<[number]>('DELETE FROM anon_log WHERE seq < ?'),
    eventsAfter: db.prepare<[number, number], { seq: number, idx: string, id: string, doc: string }>('SELECT seq, idx, id, doc FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
    countEvents: db.prepare<[], number>('SELECT count(*) FROM events').pluck(),
    countDeadLetters: db.prepare<[], number>('SELECT count(*) FROM deadletters').pluck()
  }
}

export class SqliteStore {
  readonly db: Database.Database
  /** The deployment's index prefix: index names are `<prefix>-<class>-YYYY.MM.DD` as on Elasticsearch. */
  readonly indexPrefix: string
  readonly #s: ReturnType<typeof prepare>
  readonly #indexEvents: (rows: ReadonlyArray<{ op: IndexOp<AuditEvent>, row: EventRow }>) => { leaves: SealLeaf[], lastSeq: number }
  readonly #indexStats: (rows: ReadonlyArray<{ op: IndexOp<StatsDocument>, ts: number }>) => void
  readonly #putDeadLetters: (d: readonly DeadLetter[]) => void
  readonly #appendAnon: (records: ReadonlyArray<{ id: string, value: string }>) => number

  private constructor (db: Database.Database, indexPrefix: string) {
    this.db = db
    this.indexPrefix = indexPrefix
    const s = this.#s = prepare(db)
    const ensureIndex = (name: string, kind: 'events' | 'stats', seen: Set<string>): void => {
      if (seen.has(name)) return
      seen.add(name)
      s.insertIndex.run(name, randomUUID(), kind, new Date().toISOString())
    }
    this.#indexEvents = db.transaction((rows: ReadonlyArray<{ op: IndexOp<AuditEvent>, row: EventRow }>) => {
      const leaves: SealLeaf[] = []
      const seen = new Set<string>()
      for (const { op, row } of rows) {
        const r = s.insertEvent.run(...row)
        if (r.changes === 0) continue
        const seq = r.lastInsertRowid
        ensureIndex(op.index, 'events', seen)
        for (const c of op.doc.event.category) s.insertCategory.run(c, seq)
        s.insertFts.run(seq, ftsText(op.doc))
        leaves.push({ index: op.index, id: op.id, hash: op.doc.event.hash as string, '@timestamp': op.doc['@timestamp'] })
      }
      return { leaves, lastSeq: s.lastSeq.get('events') ?? 0 }
    }).immediate
    this.#indexStats = db.transaction((rows: ReadonlyArray<{ op: IndexOp<StatsDocument>, ts: number }>) => {
      const seen = new Set<string>()
      for (const { op, ts } of rows) {
        ensureIndex(op.index, 'stats', seen)
        s.upsertStats.run(op.id, op.index, op.doc.site, op.doc.granularity, ts, JSON.stringify(op.doc))
      }
    }).immediate
    this.#putDeadLetters = db.transaction((dead: readonly DeadLetter[]) => {
      for (const d of dead) s.insertDeadLetter.run(d['@timestamp'], d.stage, d.code, d.source.stream ?? null, d.sequence ?? null, JSON.stringify(d))
    }).immediate
    this.#appendAnon = db.transaction((records: ReadonlyArray<{ id: string, value: string }>) => {
      for (const r of records) s.insertAnon.run(r.id, r.value)
      return s.lastSeq.get('anon_log') ?? 0
    }).immediate
  }

  /**
   * Opens (creating it and its directory if needed) the store file, in WAL mode with full fsync on commit, and
   * brings its schema to SCHEMA_VERSION. A file written by a newer auditline is refused, never downgraded.
   * A new file is readable by its owner only: it holds audit data (the WAL and shared-memory files SQLite
   * creates next to it take its permissions).
   */
  static open (file: string, opts: { indexPrefix: string }): SqliteStore {
    mkdirSync(dirname(file), { recursive: true })
    closeSync(openSync(file, 'a', 0o600))
    const db = new Database(file)
    try {
      db.pragma('busy_timeout = 5000')
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = FULL')
      db.pragma('foreign_keys = ON')
      // 64 MiB of page cache (default 2 MiB): the unique index on random event ids is touched all over.
      db.pragma('cache_size = -65536')
      // Copy the WAL back into the file every 8192 pages (32 MiB) instead of 1000: pages of the indexes that
      // consecutive batches touch again are copied once, not once per 4 MiB (inserts ~30 % faster, bench/embedded.ts).
      db.pragma('wal_autocheckpoint = 8192')
      db.transaction(() => {
        const version = db.pragma('user_version', { simple: true }) as number
        if (version > SCHEMA_VERSION) {
          throw new AuditError('AUD_ERR_CONFIG_INVALID', [`the embedded store ${file} has schema version ${version}, newer than the ${SCHEMA_VERSION} of this auditline: upgrade auditline or use another file`])
        }
        db.exec(SCHEMA_SQL)
        if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`)
      }).immediate()
    } catch (err) {
      db.close()
      throw err
    }
    return new SqliteStore(db, opts.indexPrefix)
  }

  /** Closes the file (a second call does nothing), letting SQLite refresh its query planner statistics first. */
  close (): void {
    if (!this.db.open) return
    this.db.pragma('optimize')
    this.db.close()
  }

  /** Runs `fn` in one transaction (nested calls of this store's writes join it), so that writes and meta commit together. */
  transaction<T> (fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  /**
   * Inserts audit events in one transaction. An id already stored is a replay of the same event (ids are
   * deterministic): it is not inserted again and yields no leaf. Returns a seal leaf per inserted event and
   * the highest events.seq assigned so far (the sealer's cursor). That never decreases, but seqs have gaps:
   * an ignored replay uses one up (AUTOINCREMENT), and retention deletes rows.
   */
  indexEvents (ops: ReadonlyArray<IndexOp<AuditEvent>>): { leaves: SealLeaf[], lastSeq: number } {
    return this.#indexEvents(ops.map(op => ({ op, row: eventRow(op) })))
  }

  /** Inserts or overwrites statistics documents by id (a re-emitted bucket replaces the earlier one). */
  indexStats (ops: ReadonlyArray<IndexOp<StatsDocument>>): void {
    this.#indexStats(ops.map(op => ({ op, ts: epochMs(op.doc.period.start, op.id, `${STATS_SCHEMA_VERSION} (statistics document)`) })))
  }

  putDeadLetters (d: readonly DeadLetter[]): void {
    this.#putDeadLetters(d)
  }

  getMeta (key: string): string | undefined {
    return this.#s.getMeta.get(key)
  }

  setMeta (key: string, value: string): void {
    this.#s.setMeta.run(key, value)
  }

  /** Appends anonymized web records; returns the seq of the last one (the last assigned when `values` is empty). */
  appendAnon (records: ReadonlyArray<{ id: string, value: string }>): number {
    return this.#appendAnon(records)
  }

  /** The last seq appended to anon_log (0 before the first), also after its rows were trimmed. */
  lastAnonSeq (): number {
    return this.#s.lastSeq.get('anon_log') ?? 0
  }

  readAnon (afterSeq: number, limit: number): Array<{ seq: number, value: string }> {
    return this.#s.readAnon.all(afterSeq, limit)
  }

  /** Deletes the anonymized records below `belowSeq` (consumed by the statistics stage); returns how many. */
  trimAnon (belowSeq: number): number {
    return this.#s.trimAnon.run(belowSeq).changes
  }

  /**
   * Seal leaves of the events after `afterSeq`, in seq order, at most `limit` rows: the events a crash left
   * committed but unsealed. `lastSeq` is the seq of the last row read (`afterSeq` when none). A row whose
   * document is not an event as the store wrote it is skipped, not sealed: verify reports it.
   */
  unsealedLeaves (afterSeq: number, limit: number): { leaves: SealLeaf[], lastSeq: number } {
    const leaves: SealLeaf[] = []
    let lastSeq = afterSeq
    for (const r of this.#s.eventsAfter.all(afterSeq, limit)) {
      lastSeq = r.seq
      let doc: { '@timestamp'?: unknown, event?: { hash?: unknown } }
      try {
        doc = JSON.parse(r.doc) as typeof doc
      } catch {
        continue
      }
      const hash = doc.event?.hash
      const ts = doc['@timestamp']
      if (typeof hash === 'string' && typeof ts === 'string') leaves.push({ index: r.idx, id: r.id, hash, '@timestamp': ts })
    }
    return { leaves, lastSeq }
  }

  countEvents (): number {
    return this.#s.countEvents.get() as number
  }

  deadLetterCount (): number {
    return this.#s.countDeadLetters.get() as number
  }
}
