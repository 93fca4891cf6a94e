/**
 * What the write side (indexer, sealer, retention, `auditline verify`) needs from a store, so that the same
 * code runs on Elasticsearch and on the embedded SQLite store (#7). Index names are the same in both:
 * `<prefix>-<class>-YYYY.MM.DD` (lib/elasticsearch.ts indexName); in SQLite an "index" is the set of rows
 * that carry that name. The read side's interface is query-api/store/types.ts.
 */
import type { SealCheckpoint } from '../lib/seal.ts'
import type { StoredCheckpoint, IndexedDoc, TimeRange } from './verify.ts'

/** Where signed seal checkpoints live (`<prefix>_seals` in Elasticsearch, the `seals` table in SQLite). */
export interface SealStore {
  /** Name used in findings and logs (`<prefix>_seals`). */
  readonly name: string
  /** Creates the container if it does not exist. Idempotent. */
  ensure (): Promise<void>
  /** The checkpoint with the highest seq, null for an empty chain. */
  readHead (): Promise<{ docId: string, cp: SealCheckpoint } | null>
  /** Writes checkpoint `cp` under `checkpointDocId(cp.seq)` create-only: false (nothing written) when that id exists. */
  create (cp: SealCheckpoint): Promise<boolean>
}

/** What `auditline verify` reads (cli/verify.ts), without any store's query language. */
export interface VerifySource {
  /** Name of the seals container, for findings. */
  readonly sealsName: string
  readHead (): Promise<StoredCheckpoint | null>
  getCheckpoint (seq: number): Promise<StoredCheckpoint | null>
  /** Checkpoints by seq (missing ones absent from the map). */
  getCheckpoints (seqs: readonly number[]): Promise<Map<number, StoredCheckpoint>>
  /** Every stored checkpoint whose [from, to] overlaps the range (`to >= range.from`, `from <= range.to`), in pages. */
  checkpoints (range: TimeRange): AsyncIterable<StoredCheckpoint[]>
  /** Existing event indices whose names `matches` accepts (never the seals or statistics), sorted. */
  indices (matches: (index: string) => boolean): Promise<string[]>
  /** The documents of `index` with @timestamp in [range.from, range.to] (both inclusive), in pages. */
  docs (index: string, range: TimeRange): AsyncIterable<IndexedDoc[]>
  /** `_source` of the given ids in `index` (missing ids absent). */
  getDocs (index: string, ids: readonly string[]): Promise<Map<string, unknown>>
  /** index → time of the newest `retention_index_deleted` record naming it (records whose hash fails are ignored by the caller). */
  retirementRecords (indices: readonly string[]): Promise<unknown[]>
  /** Sequence numbers of `stream` in [from, to] present in any event index. */
  sequencesIn (stream: string, from: number, to: number): Promise<Set<number>>
  /** stream → sequence numbers that went to dead letters. */
  deadLetters (): Promise<Map<string, Set<number>>>
  close (): Promise<void>
}
