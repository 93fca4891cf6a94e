/**
 * Pure part of indexing statistics: a `stats.web.v1` message → a bulk index operation into
 * `<prefix>-stats-YYYY.MM.DD` (UTC day of the bucket start) with `_id` = the document's id, or a dead letter.
 * A re-emitted document (a late record changed its bucket) has the same id and overwrites the earlier one.
 */
import { indexName } from '../../lib/elasticsearch.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { assertStatsDocument, statsDocumentId, type StatsDocument } from '../../anonymizer/stats/record.ts'
import { decodeJson, indexDeadLetter, type KafkaPosition } from './transform.ts'

export type StatsDecoded =
  | { op: { index: string, id: string, doc: StatsDocument } }
  | { dead: DeadLetter }

export function decodeStatsMessage (value: Buffer | null, pos: KafkaPosition, indexPrefix: string, now: Date): StatsDecoded {
  const dead = (code: string, reason: string): StatsDecoded => indexDeadLetter(value, pos, now, code, reason)
  // Statistics hold no visitor data (counts of anonymized records only): the message may be kept in a dead letter.
  const decoded = decodeJson<StatsDocument>(value, pos, now, assertStatsDocument)
  if ('dead' in decoded) return decoded
  const doc = decoded.doc
  if (Number.isNaN(Date.parse(doc.period.start))) return dead('AUD_ERR_EVENT_INVALID', `statistics document ${doc.id}: period.start ${doc.period.start} is not a valid time`)
  // The id must be the one its bucket determines, or a re-emit would not overwrite.
  const expected = statsDocumentId(doc.site, doc.granularity, doc.period.start)
  if (doc.id !== expected || doc['@timestamp'] !== doc.period.start) {
    return dead('AUD_ERR_EVENT_INVALID', `statistics document ${doc.id}: id or @timestamp does not match site, granularity and period.start (expected id ${expected})`)
  }
  return { op: { index: indexName(indexPrefix, 'stats', doc.period.start), id: doc.id, doc } }
}
