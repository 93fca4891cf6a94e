/**
 * Pure part of indexing statistics: a `stats.web.v1` message → a bulk index operation into
 * `<prefix>-stats-YYYY.MM.DD` (UTC day of the bucket start) with `_id` = the document's id, or a dead letter.
 * A re-emitted document (a late record changed its bucket) has the same id and overwrites the earlier one.
 */
import { indexName } from '../../lib/elasticsearch.ts'
import { isAuditError } from '../../lib/errors.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { assertStatsDocument, statsDocumentId, type StatsDocument } from '../../anonymizer/stats/record.ts'
import type { KafkaPosition } from './transform.ts'

export type StatsDecoded =
  | { op: { index: string, id: string, doc: StatsDocument } }
  | { dead: DeadLetter }

export function decodeStatsMessage (value: Buffer | null, pos: KafkaPosition, indexPrefix: string, now: Date): StatsDecoded {
  const dead = (code: string, reason: string): StatsDecoded => ({
    dead: {
      '@timestamp': now.toISOString(),
      stage: 'index',
      code,
      reason,
      source: { topic: pos.topic, partition: pos.partition, kafka_offset: pos.offset },
      // Statistics hold no visitor data (counts of anonymized records only): the message may be kept.
      ...(value === null ? {} : { original: value.toString('utf8'), original_encoding: 'utf8', original_length: value.length })
    }
  })
  if (value === null) return dead('AUD_ERR_INDEX_DECODE', 'message has no value')
  let doc: unknown
  try {
    doc = JSON.parse(value.toString('utf8'))
  } catch (err) {
    return dead('AUD_ERR_INDEX_DECODE', `not JSON: ${(err as Error).message}`)
  }
  try {
    assertStatsDocument(doc)
  } catch (err) {
    if (isAuditError(err)) return dead(err.code, err.message)
    throw err
  }
  // The id must be the one its bucket determines, or a re-emit would not overwrite.
  const expected = statsDocumentId(doc.site, doc.granularity, doc.period.start)
  if (doc.id !== expected || doc['@timestamp'] !== doc.period.start) {
    return dead('AUD_ERR_EVENT_INVALID', `statistics document ${doc.id}: id or @timestamp does not match site, granularity and period.start (expected id ${expected})`)
  }
  return { op: { index: indexName(indexPrefix, 'stats', doc.period.start), id: doc.id, doc } }
}
