/**
 * The audit events that record a retention deletion. Pure: everything, including the clock, comes in.
 *
 * Each deleted index yields two events in the stream `<host>/retention` (class `api`, topic `audit.api.v1`):
 * - `retention_delete_index` (outcome `unknown`), produced with acks=all BEFORE the index is deleted: a crash
 *   between the two leaves a recorded intent, never an unrecorded deletion;
 * - `retention_index_deleted` (outcome `success`), produced after Elasticsearch confirmed the deletion (or found
 *   the index already gone, `retention.result: not_found`).
 * Both carry the index, its uuid, class, period, the day it held, when it expired and how many documents it held
 * (`_count` right before the deletion). Ids are derived from stream, phase, index name and index uuid, so a re-sent
 * record overwrites itself, and a re-created index of the same name (a late event) gets records of its own.
 */
import { ECS_VERSION, SCHEMA_VERSION, assertEvent, eventId, sealEvent, type AuditEvent } from '../../lib/ecs.ts'
import type { ExpiredIndex } from './plan.ts'

export const RETENTION_DATASET = 'auditline.retention'
export const ACTION_INTENT = 'retention_delete_index'
export const ACTION_DONE = 'retention_index_deleted'

export function retentionStream (host: string): string {
  return `${host}/retention`
}

export interface DeletionTarget extends ExpiredIndex {
  /** Elasticsearch's uuid of the index (tells a re-created index of the same name apart). */
  uuid: string
  /** `_count` right before the deletion; undefined when it could not be counted (a closed index). */
  documents: number | undefined
}

export type DeletionResult = 'deleted' | 'not_found'

function fields (t: DeletionTarget): Record<string, string | number> {
  return {
    index: t.index,
    index_uuid: t.uuid,
    class: t.eventClass,
    period_days: t.periodDays,
    policy: `retention.classes.${t.eventClass}=${t.periodDays}d`,
    index_day: t.day,
    expired_at: t.expiredAt,
    ...(t.documents === undefined ? {} : { documents: t.documents })
  }
}

function held (t: DeletionTarget): string {
  return t.documents === undefined ? 'an uncounted number of documents (closed index)' : `${t.documents} document${t.documents === 1 ? '' : 's'}`
}

function base (host: string, now: Date): Pick<AuditEvent, '@timestamp' | 'ecs' | 'auditline' | 'host'> {
  return {
    '@timestamp': now.toISOString(),
    ecs: { version: ECS_VERSION },
    auditline: { schema: SCHEMA_VERSION, stream: retentionStream(host), class: 'api' },
    host: { name: host }
  }
}

export function intentId (host: string, t: Pick<DeletionTarget, 'index' | 'uuid'>): string {
  return eventId(retentionStream(host), 'intent', t.index, t.uuid)
}

/** The record written before the deletion. */
export function deletionIntent (t: DeletionTarget, host: string, sequence: number, now: Date): AuditEvent {
  const e: AuditEvent = {
    ...base(host, now),
    event: {
      id: intentId(host, t),
      kind: 'event',
      category: ['database'],
      type: ['deletion'],
      action: ACTION_INTENT,
      // Not known yet: this record is written before Elasticsearch is asked.
      outcome: 'unknown',
      dataset: RETENTION_DATASET,
      module: 'auditline',
      provider: 'retention',
      sequence,
      reason: `Deleting index ${t.index} (${t.eventClass} events of ${t.day}, ${held(t)}): retention.classes.${t.eventClass} is ${t.periodDays} days, expired at ${t.expiredAt}.`
    },
    retention: fields(t)
  }
  return checked(e)
}

/** The record written after Elasticsearch confirmed the deletion (or found the index gone). */
export function deletionDone (t: DeletionTarget, result: DeletionResult, host: string, sequence: number, now: Date): AuditEvent {
  const e: AuditEvent = {
    ...base(host, now),
    event: {
      id: eventId(retentionStream(host), 'done', t.index, t.uuid),
      kind: 'event',
      category: ['database'],
      type: ['deletion'],
      action: ACTION_DONE,
      outcome: 'success',
      dataset: RETENTION_DATASET,
      module: 'auditline',
      provider: 'retention',
      sequence,
      reason: result === 'deleted'
        ? `Deleted index ${t.index} (${t.eventClass} events of ${t.day}, ${held(t)}): retention.classes.${t.eventClass} is ${t.periodDays} days, expired at ${t.expiredAt}.`
        : `Index ${t.index} (${t.eventClass} events of ${t.day}) was already gone when it was to be deleted.`
    },
    retention: { ...fields(t), result, intent_id: intentId(host, t) }
  }
  return checked(e)
}

function checked (e: AuditEvent): AuditEvent {
  const sealed = sealEvent(e)
  assertEvent(sealed)
  return sealed
}
