/**
 * What `auditline verify` reads from the embedded store (#7). Everything comes back exactly as stored: a
 * changed document, a deleted row or a row inserted with plain SQL must reach indexer/verify.ts unchanged,
 * so nothing here repairs, skips or re-derives a row. A document that is not even JSON is handed over as
 * its text (verify reports it as changed) rather than failing the run. An event index exists when an
 * `indices` row or any event row names it, so that an event inserted under a name of its own is verified too.
 */
import { checkpointDocId, sealsIndexName } from '../../lib/seal-template.ts'
import type { IndexedDoc, StoredCheckpoint, TimeRange } from '../verify.ts'
import type { VerifySource } from '../store.ts'
import type { SqliteStore } from './store.ts'

const PAGE = 1000

function parsed (doc: string): unknown {
  try {
    return JSON.parse(doc)
  } catch {
    return doc
  }
}

/** Epoch ms of a range bound (the caller checked it is a time); undefined bounds are open. */
const lowest = (t: string | undefined): number => t === undefined ? Number.MIN_SAFE_INTEGER : Date.parse(t)
const highest = (t: string | undefined): number => t === undefined ? Number.MAX_SAFE_INTEGER : Date.parse(t)

function prepare (store: SqliteStore) {
  const db = store.db
  return {
    head: db.prepare<[], { seq: number, doc: string }>('SELECT seq, doc FROM seals ORDER BY seq DESC LIMIT 1'),
    checkpoint: db.prepare<[number], { seq: number, doc: string }>('SELECT seq, doc FROM seals WHERE seq = ?'),
    checkpointsIn: db.prepare<[string], { seq: number, doc: string }>('SELECT seq, doc FROM seals WHERE seq IN (SELECT value FROM json_each(?))'),
    // Bounds in seconds (unixepoch 'subsec'); a bound or a stored time that is not a time selects the row,
    // so that a checkpoint too broken to say when it was is checked anyway.
    checkpointPage: db.prepare<{ after: number, from: number | null, to: number | null }, { seq: number, doc: string }>(`SELECT seq, doc FROM seals
      WHERE seq > :after AND coalesce(unixepoch(to_ts, 'subsec') >= :from, 1) AND coalesce(unixepoch(from_ts, 'subsec') <= :to, 1)
      ORDER BY seq LIMIT ${PAGE}`),
    indices: db.prepare<[], string>("SELECT name FROM indices WHERE kind = 'events' UNION SELECT DISTINCT idx FROM events").pluck(),
    // By idx in seq order (events_idx holds (idx, seq)), also when the time range is narrow: stable pages.
    docPage: db.prepare<[string, number, number, number], { seq: number, id: string, doc: string }>(`SELECT seq, id, doc FROM events INDEXED BY events_idx
      WHERE idx = ? AND seq > ? AND ts >= ? AND ts <= ? ORDER BY seq LIMIT ${PAGE}`),
    // CROSS JOIN: look each id up by the unique id index, never scan the whole index name's rows.
    docsById: db.prepare<[string, string], { id: string, doc: string }>('SELECT e.id, e.doc FROM json_each(?) AS j CROSS JOIN events AS e ON e.id = j.value WHERE e.idx = ?'),
    byAction: db.prepare<[string], string>('SELECT doc FROM events WHERE action = ?').pluck(),
    sequences: db.prepare<[string, number, number], number>('SELECT sequence FROM events WHERE stream = ? AND sequence BETWEEN ? AND ?').pluck(),
    deadLetters: db.prepare<[], { stream: string, sequence: number }>('SELECT stream, sequence FROM deadletters WHERE stream IS NOT NULL AND sequence IS NOT NULL')
  }
}

/** `auditline verify` on the embedded store. Owns the store: close() closes it. */
export class SqliteVerifySource implements VerifySource {
  readonly sealsName: string
  readonly #store: SqliteStore
  readonly #s: ReturnType<typeof prepare>

  constructor (store: SqliteStore) {
    this.#store = store
    this.sealsName = sealsIndexName(store.indexPrefix)
    this.#s = prepare(store)
  }

  async readHead (): Promise<StoredCheckpoint | null> {
    const row = this.#s.head.get()
    return row === undefined ? null : { docId: checkpointDocId(row.seq), cp: parsed(row.doc) }
  }

  async getCheckpoint (seq: number): Promise<StoredCheckpoint | null> {
    const row = this.#s.checkpoint.get(seq)
    return row === undefined ? null : { docId: checkpointDocId(row.seq), cp: parsed(row.doc) }
  }

  async getCheckpoints (seqs: readonly number[]): Promise<Map<number, StoredCheckpoint>> {
    const out = new Map<number, StoredCheckpoint>()
    for (const row of this.#s.checkpointsIn.all(JSON.stringify(seqs))) out.set(row.seq, { docId: checkpointDocId(row.seq), cp: parsed(row.doc) })
    return out
  }

  async * checkpoints (range: TimeRange): AsyncIterable<StoredCheckpoint[]> {
    const seconds = (t: string | undefined): number | null => t === undefined ? null : Date.parse(t) / 1000
    const bounds = { from: seconds(range.from), to: seconds(range.to) }
    for (let after = -1; ;) {
      const rows = this.#s.checkpointPage.all({ after, ...bounds })
      if (rows.length === 0) return
      yield rows.map(r => ({ docId: checkpointDocId(r.seq), cp: parsed(r.doc) }))
      after = (rows[rows.length - 1] as { seq: number }).seq
      if (rows.length < PAGE) return
    }
  }

  async indices (matches: (index: string) => boolean): Promise<string[]> {
    return this.#s.indices.all().filter(matches).sort()
  }

  async * docs (index: string, range: TimeRange): AsyncIterable<IndexedDoc[]> {
    const from = lowest(range.from)
    const to = highest(range.to)
    for (let after = 0; ;) {
      const rows = this.#s.docPage.all(index, after, from, to)
      if (rows.length === 0) return
      yield rows.map(r => ({ index, id: r.id, source: parsed(r.doc) }))
      after = (rows[rows.length - 1] as { seq: number }).seq
      if (rows.length < PAGE) return
    }
  }

  async getDocs (index: string, ids: readonly string[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>()
    for (const row of this.#s.docsById.all(JSON.stringify(ids), index)) out.set(row.id, parsed(row.doc))
    return out
  }

  async retirementRecords (indices: readonly string[]): Promise<unknown[]> {
    const wanted = new Set(indices)
    return this.#s.byAction.all('retention_index_deleted').map(parsed).filter(d => {
      const index = (d as { retention?: { index?: unknown } } | null)?.retention?.index
      return typeof index === 'string' && wanted.has(index)
    })
  }

  async sequencesIn (stream: string, from: number, to: number): Promise<Set<number>> {
    return new Set(this.#s.sequences.all(stream, from, to))
  }

  async deadLetters (): Promise<Map<string, Set<number>>> {
    const out = new Map<string, Set<number>>()
    for (const { stream, sequence } of this.#s.deadLetters.iterate()) {
      const s = out.get(stream) ?? new Set<number>()
      s.add(sequence)
      out.set(stream, s)
    }
    return out
  }

  async close (): Promise<void> {
    this.#store.close()
  }
}
