/**
 * Pure part of the indexer: a Kafka message → a bulk index operation, or a dead letter with the reason.
 */
import { SCHEMA_VERSION, assertEvent, verifyEventHash, type AuditEvent } from '../../lib/ecs.ts'
import { indexName } from '../../lib/elasticsearch.ts'
import { AuditError, isAuditError } from '../../lib/errors.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'

export interface KafkaPosition { topic: string, partition: number, offset: string }

export type Decoded =
  | { op: { index: string, id: string, doc: AuditEvent } }
  | { dead: DeadLetter }

/** A dead letter of the indexing stage for the message at `pos` (its value kept: audit and statistics data only). */
export function indexDeadLetter (value: Buffer | null, pos: KafkaPosition, now: Date, code: string, reason: string): { dead: DeadLetter } {
  return {
    dead: {
      '@timestamp': now.toISOString(),
      stage: 'index',
      code,
      reason,
      source: { topic: pos.topic, partition: pos.partition, kafka_offset: pos.offset },
      ...(value === null ? {} : { original: value.toString('utf8'), original_encoding: 'utf8', original_length: value.length })
    }
  }
}

/** The message's JSON value checked by `check` (which throws an AuditError naming the field), or its dead letter. */
export function decodeJson<T> (value: Buffer | null, pos: KafkaPosition, now: Date, check: (doc: unknown) => asserts doc is T): { doc: T } | { dead: DeadLetter } {
  if (value === null) return indexDeadLetter(value, pos, now, 'AUD_ERR_INDEX_DECODE', 'message has no value')
  let doc: unknown
  try {
    doc = JSON.parse(value.toString('utf8'))
  } catch (err) {
    return indexDeadLetter(value, pos, now, 'AUD_ERR_INDEX_DECODE', `not JSON: ${(err as Error).message}`)
  }
  try {
    check(doc)
  } catch (err) {
    if (isAuditError(err)) return indexDeadLetter(value, pos, now, err.code, err.message)
    throw err
  }
  return { doc }
}

/**
 * Decodes one audit event message: schema, a real calendar time, the hash recomputed, the index name.
 * `inProcess`: the event was built, schema-checked and hashed by this very process a moment ago (the embedded
 * mode's channel, where no broker or other producer sits in between); schema and hash are then not checked a
 * second time — the same code made them from the same object.
 */
export function decodeMessage (value: Buffer | null, pos: KafkaPosition, indexPrefix: string, now: Date, opts: { inProcess?: boolean } = {}): Decoded {
  const dead = (code: string, reason: string): Decoded => indexDeadLetter(value, pos, now, code, reason)
  const decoded = decodeJson<AuditEvent>(value, pos, now, opts.inProcess === true ? assertObject : assertEvent)
  if ('dead' in decoded) return decoded
  const doc = decoded.doc
  // The schema's pattern admits times no calendar has (`T23:60:00Z`): no index could place them.
  if (Number.isNaN(Date.parse(doc['@timestamp']))) return dead('AUD_ERR_EVENT_INVALID', `event ${doc.event.id}: @timestamp ${doc['@timestamp']} is not a valid time`)
  if (opts.inProcess !== true) {
    const { ok, computed } = verifyEventHash(doc)
    if (!ok) return dead('AUD_ERR_INDEX_HASH_MISMATCH', `event ${doc.event.id}: expected ${String(doc.event.hash)}, computed ${computed}`)
  }
  const indexed: AuditEvent = { ...doc, event: { ...doc.event, ingested: now.toISOString() } }
  return { op: { index: indexName(indexPrefix, doc.auditline.class, doc['@timestamp']), id: doc.event.id, doc: indexed } }
}

function assertObject (doc: unknown): asserts doc is AuditEvent {
  if (typeof doc !== 'object' || doc === null || typeof (doc as { event?: { id?: unknown } }).event?.id !== 'string') {
    throw new AuditError('AUD_ERR_EVENT_INVALID', [SCHEMA_VERSION, 'not an event object'])
  }
}

/** Bulk item statuses worth retrying: the cluster was busy or broken, not the document. */
export function isRetriableStatus (status: number): boolean {
  return status === 429 || status >= 500
}
