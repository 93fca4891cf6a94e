/**
 * Retention's view of the embedded store (#7): an "index" is a row of `indices` and the events or statistics
 * rows that carry its name. Deleting one removes exactly those rows (with the events' categories and free
 * text) in one transaction, so that a crash leaves the index either whole or gone, never half. Seals are never
 * deleted: a chain with holes proves nothing, and verify explains the sealed events of a deleted index by its
 * `retention_index_deleted` record.
 */
import { AuditError } from '../../lib/errors.ts'
import { indexMatcher } from '../../lib/index-pattern.ts'
import type { RetentionStore } from '../retention/run.ts'
import type { DeletionResult } from '../retention/record.ts'
import type { SqliteStore } from './store.ts'

export function sqliteRetentionStore (store: SqliteStore): RetentionStore {
  const db = store.db
  const list = db.prepare<[], { name: string, uuid: string }>('SELECT name, uuid FROM indices ORDER BY name')
  const count = db.prepare<[string, string], number>('SELECT (SELECT count(*) FROM events WHERE idx = ?) + (SELECT count(*) FROM stats WHERE idx = ?)').pluck()
  const uuidOf = db.prepare<[string], string>('SELECT uuid FROM indices WHERE name = ?').pluck()
  // Categories have no index by seq (it would cost every insert): one scan of them per deleted index.
  const deleteCategories = db.prepare<[string]>('DELETE FROM event_categories WHERE seq IN (SELECT seq FROM events WHERE idx = ?)')
  const deleteFts = db.prepare<[string]>('DELETE FROM events_fts WHERE rowid IN (SELECT seq FROM events WHERE idx = ?)')
  const deleteEvents = db.prepare<[string]>('DELETE FROM events WHERE idx = ?')
  const deleteStats = db.prepare<[string]>('DELETE FROM stats WHERE idx = ?')
  const deleteIndex = db.prepare<[string]>('DELETE FROM indices WHERE name = ?')
  const remove = db.transaction((index: string): DeletionResult => {
    if (deleteIndex.run(index).changes === 0) return 'not_found'
    deleteCategories.run(index)
    deleteFts.run(index)
    deleteEvents.run(index)
    deleteStats.run(index)
    return 'deleted'
  }).immediate
  return {
    async list (pattern) {
      const matches = indexMatcher(pattern)
      return list.all().filter(r => matches(r.name)).map(r => ({ index: r.name, uuid: r.uuid, status: 'open' }))
    },
    async count (index) {
      return count.get(index, index) as number
    },
    async uuidOf (index) {
      return uuidOf.get(index)
    },
    async delete (index) {
      try {
        return remove(index)
      } catch (err) {
        throw new AuditError('AUD_ERR_RETENTION_DELETE', [index, err], { cause: err })
      }
    }
  }
}
