/**
 * The embedded store's seal chain (#7): signed checkpoints in the `seals` table under their seq, and for each
 * sealed event id the checkpoints that hold it (`seal_ids`, for evidence exports). Create-only, like
 * `op_type=create` on Elasticsearch: a seq once written is never overwritten.
 */
import type Database from 'better-sqlite3'
import type { SealCheckpoint } from '../../lib/seal.ts'
import { AuditError } from '../../lib/errors.ts'
import { checkpointDocId, sealsIndexName } from '../../lib/seal-template.ts'
import type { SealStore } from '../store.ts'
import type { SqliteStore } from './store.ts'

export class SqliteSealStore implements SealStore {
  readonly name: string
  readonly #head: Database.Statement<[], { seq: number, doc: string }>
  readonly #create: (cp: SealCheckpoint) => boolean

  constructor (store: SqliteStore) {
    const db = store.db
    this.name = sealsIndexName(store.indexPrefix)
    this.#head = db.prepare<[], { seq: number, doc: string }>('SELECT seq, doc FROM seals ORDER BY seq DESC LIMIT 1')
    const insert = db.prepare<[number, string, string, string, string]>('INSERT OR IGNORE INTO seals (seq, idx, from_ts, to_ts, doc) VALUES (?, ?, ?, ?, ?)')
    const insertId = db.prepare<[string, number]>('INSERT OR IGNORE INTO seal_ids (id, seq) VALUES (?, ?)')
    this.#create = db.transaction((cp: SealCheckpoint) => {
      if (insert.run(cp.seq, cp.index, cp.from, cp.to, JSON.stringify(cp)).changes === 0) return false
      for (const id of cp.ids) insertId.run(id, cp.seq)
      return true
    }).immediate
  }

  /** The table is part of the schema: nothing to create. */
  async ensure (): Promise<void> {}

  /**
   * The checkpoint with the highest seq, as stored (the sealer checks its signature and chains on). A row that
   * is not JSON was not written by a sealer: refused, so that nothing chains onto it unnoticed.
   */
  async readHead (): Promise<{ docId: string, cp: SealCheckpoint } | null> {
    const row = this.#head.get()
    if (row === undefined) return null
    try {
      return { docId: checkpointDocId(row.seq), cp: JSON.parse(row.doc) as SealCheckpoint }
    } catch (err) {
      throw new AuditError('AUD_ERR_INDEX_SEAL_WRITE', [row.seq, `the stored checkpoint is not JSON, run auditline verify: ${(err as Error).message}`], { cause: err })
    }
  }

  async create (cp: SealCheckpoint): Promise<boolean> {
    return this.#create(cp)
  }
}
