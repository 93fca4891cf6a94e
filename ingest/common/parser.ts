/**
 * What a source parser is: a pure function from one log line to an event draft, a skip (a line that
 * carries nothing the TOM asks for, counted in metrics), or an error (which becomes a dead letter).
 * The collector adds what depends on position and stream: id, sequence, hash, host, log.*.
 */
import type { AuditEvent } from '../../lib/ecs.ts'

export type EventDraft = Omit<AuditEvent, 'ecs' | 'auditline' | 'event' | '@timestamp'> & {
  '@timestamp'?: string
  event: Omit<AuditEvent['event'], 'id' | 'sequence' | 'hash' | 'ingested' | 'dataset'> & { dataset?: string }
}

export interface LineContext {
  /** Path the line was read from. */
  path: string
  /** Byte offset of the line in its file. */
  offset: number
  /** When the collector read the line: the timestamp of lines that carry none (`sshd -E`). */
  readAt: Date
}

export type ParseResult =
  | { kind: 'event', event: EventDraft }
  | { kind: 'skip' }
  | { kind: 'error', reason: string }

export interface LineParser {
  /** ECS `event.dataset`, e.g. `sshd.auth`. */
  readonly dataset: string
  /** Event class: selects topic and index (`ssh`, `ftp`, `db`). */
  readonly eventClass: string
  parse (line: string, ctx: LineContext): ParseResult
}

export const SKIP: ParseResult = Object.freeze({ kind: 'skip' })

export function parseError (reason: string): ParseResult {
  return { kind: 'error', reason }
}
