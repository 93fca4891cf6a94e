/**
 * Turns a parser's draft into a complete, hashed, validated event. Pure.
 */
import { ECS_VERSION, SCHEMA_VERSION, assertEvent, eventId, sealEvent, type AuditEvent } from '../../lib/ecs.ts'
import type { EventDraft } from './parser.ts'

export interface Position {
  /** Collector host name (also the default `host.name`). */
  host: string
  /** Source name from the config: part of the stream id. */
  source: string
  /** `dev:ino` of the file. */
  fileKey: string
  generation: number
  offset: number
  path: string
}

export function streamId (host: string, source: string): string {
  return `${host}/${source}`
}

export function finalizeEvent (draft: EventDraft, pos: Position, sequence: number, dataset: string, eventClass: string, readAt: Date): AuditEvent {
  const { event, '@timestamp': ts, ...rest } = draft
  const e: AuditEvent = {
    '@timestamp': ts ?? readAt.toISOString(),
    ecs: { version: ECS_VERSION },
    ...rest,
    event: {
      ...event,
      id: eventId(pos.host, pos.source, pos.fileKey, pos.generation, pos.offset),
      dataset: event.dataset ?? dataset,
      // No `event.created` from the clock: a replayed line must yield the identical event (same id, same hash).
      sequence
    },
    auditline: { schema: SCHEMA_VERSION, stream: streamId(pos.host, pos.source), class: eventClass },
    log: { ...rest.log, file: { path: pos.path }, offset: pos.offset },
    host: { name: pos.host, ...rest.host }
  }
  const related = relatedOf(e)
  if (related !== undefined) e.related = related
  const sealed = sealEvent(e)
  assertEvent(sealed)
  return sealed
}

function relatedOf (e: AuditEvent): AuditEvent['related'] {
  const ip = uniq([...(e.related?.ip ?? []), e.source?.ip, e.destination?.ip])
  const user = uniq([...(e.related?.user ?? []), e.user?.name, e.user?.target?.name, e.user?.effective?.name])
  const hosts = uniq([...(e.related?.hosts ?? []), e.host?.name, e.source?.domain])
  if (ip.length + user.length + hosts.length === 0) return undefined
  return {
    ...(ip.length > 0 ? { ip } : {}),
    ...(user.length > 0 ? { user } : {}),
    ...(hosts.length > 0 ? { hosts } : {})
  }
}

function uniq (xs: ReadonlyArray<string | undefined>): string[] {
  return [...new Set(xs.filter((x): x is string => x !== undefined && x !== ''))]
}
