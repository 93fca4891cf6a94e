/**
 * ECS event drafts for database servers (MariaDB, PostgreSQL), shared by their parsers. Pure.
 * Field set `db.*` (docs/events.md): system, name (the session's database), statement (redacted),
 * operation, object, object_type, privileges, connection_id, error_code.
 * No db event carries `event.original`: the raw line may hold a password.
 */
import { isIP } from 'node:net'
import { parseError, type EventDraft, type LineContext, type LineParser, type ParseResult } from './parser.ts'
import { finalizeEvent } from './finalize.ts'
import { classifyStatement } from './sql-ddl.ts'
import { looksSecret, maskQuoted, redactSql, scrubSecrets } from './redact-sql.ts'
import type { SqlDialect } from './sql-lexer.ts'

export type DbSystem = SqlDialect

export interface DbClient {
  /** Client IP when it connected over TCP. */
  ip?: string
  port?: number
  /** What the server wrote when there is no IP: `[local]` (PostgreSQL), `localhost` (MariaDB, socket), a host name. */
  address?: string
}

/** What a log record says about the session it belongs to. */
export interface DbSession {
  system: DbSystem
  timestamp?: string
  user?: string
  /** The session's current database. */
  database?: string
  client?: DbClient
  /** Name of the database server host (MariaDB's `serverhost`). */
  serverHost?: string
  /** Server process (PostgreSQL backend pid). */
  pid?: number
  /** MariaDB connection id, PostgreSQL session id. */
  connectionId?: string
}

/** Longest `db.statement` kept (the event schema allows 8192): longer ones are cut and tagged. */
export const MAX_STATEMENT = 8000

function clamp (s: string, max: number): string {
  if (s.length <= max) return s
  let cut = s.slice(0, max)
  // Never leave half a surrogate pair.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1)
  return cut
}

const present = (s: string | undefined): s is string => s !== undefined && s !== ''

/** Client from what the server wrote: an IP becomes `source.ip`, anything else (`[local]`, `localhost`) `source.address`. */
export function clientFrom (host: string | undefined, port?: number): DbClient | undefined {
  if (!present(host)) return undefined
  const h = host.startsWith('[') && host.endsWith(']') && isIP(host.slice(1, -1)) !== 0 ? host.slice(1, -1) : host
  const withPort = port !== undefined && Number.isInteger(port) && port >= 0 && port <= 65535 ? { port } : {}
  return isIP(h) !== 0 ? { ip: h, ...withPort } : { address: h, ...withPort }
}

function common (s: DbSession): Omit<EventDraft, 'event'> {
  const d: Omit<EventDraft, 'event'> = {}
  if (present(s.timestamp)) d['@timestamp'] = s.timestamp
  if (present(s.user)) d.user = { name: clamp(s.user, 1024) }
  if (s.client !== undefined) {
    const src: NonNullable<EventDraft['source']> = {}
    if (s.client.ip !== undefined) src.ip = s.client.ip
    if (s.client.port !== undefined) src.port = s.client.port
    if (present(s.client.address)) src.address = clamp(s.client.address, 1024)
    if (Object.keys(src).length > 0) d.source = src
  }
  if (present(s.serverHost)) d.host = { hostname: clamp(s.serverHost, 1024) }
  if (s.pid !== undefined && Number.isSafeInteger(s.pid) && s.pid >= 0) d.process = { name: s.system === 'postgresql' ? 'postgres' : 'mariadbd', pid: s.pid }
  return d
}

function dbFields (s: DbSession, extra: Record<string, string | string[] | undefined>): NonNullable<EventDraft['db']> {
  const db: NonNullable<EventDraft['db']> = { system: s.system }
  if (present(s.database)) db.name = clamp(s.database, 1024)
  if (present(s.connectionId)) db.connection_id = s.connectionId
  for (const [k, v] of Object.entries(extra)) {
    if (Array.isArray(v)) { if (v.length > 0) db[k] = v.slice(0, 64).map(x => clamp(x, 1024)) } else if (present(v)) db[k] = clamp(v, MAX_STATEMENT)
  }
  return db
}

export interface OutcomeDetail {
  /** Why it failed, as the server put it (scrubbed of secrets by the builder). */
  reason?: string
  /** MariaDB error number, PostgreSQL SQLSTATE. */
  errorCode?: string
}

/** A login: `db_connect` (authentication, session start). */
export function connectEvent (s: DbSession, outcome: 'success' | 'failure', detail: OutcomeDetail = {}): EventDraft {
  return {
    ...common(s),
    event: {
      kind: 'event',
      category: outcome === 'success' ? ['authentication', 'session'] : ['authentication'],
      type: ['start'],
      action: 'db_connect',
      outcome,
      module: s.system,
      ...(present(detail.reason) ? { reason: clamp(detail.reason, MAX_STATEMENT) } : {})
    },
    db: dbFields(s, { error_code: detail.errorCode })
  }
}

/** The end of a session: `db_disconnect`. */
export function disconnectEvent (s: DbSession): EventDraft {
  return {
    ...common(s),
    event: { kind: 'event', category: ['session'], type: ['end'], action: 'db_disconnect', outcome: 'success', module: s.system },
    db: dbFields(s, {})
  }
}

/**
 * A DDL/DCL statement as an event, with the statement redacted; undefined for statements the TOM does not
 * ask about (DML, SELECT, SET …), which the parser then skips.
 */
export function statementEvent (s: DbSession, sql: string, outcome: 'success' | 'failure' | 'unknown', detail: OutcomeDetail = {}): EventDraft | undefined {
  const info = classifyStatement(sql, s.system)
  if (info === undefined) return undefined
  const red = redactSql(sql, s.system)
  const tags: string[] = []
  let statement = red.text.trim()
  if (statement.length > MAX_STATEMENT) { statement = clamp(statement, MAX_STATEMENT); tags.push('db_statement_truncated') }
  // Object names and messages are scrubbed too: a typo can put a password where a name is expected.
  const scrub = (x: string): string => scrubSecrets(x, red.secrets)
  const objects = info.objects.map(scrub).filter(present)
  const targets = info.targetUsers.map(scrub).filter(present)
  let reason = detail.reason
  if (present(reason)) reason = scrub(red.credential ? maskQuoted(reason, new Set([...objects, ...targets])) : reason)
  const draft: EventDraft = {
    ...common(s),
    event: {
      kind: 'event',
      category: info.category,
      type: info.type,
      action: info.action,
      outcome,
      module: s.system,
      ...(present(reason) ? { reason: clamp(reason, MAX_STATEMENT) } : {})
    },
    db: dbFields(s, {
      statement,
      operation: info.operation,
      object: objects.length > 1 ? objects : objects[0],
      object_type: info.objectType,
      privileges: info.privileges,
      error_code: detail.errorCode
    })
  }
  if (targets.length > 0) {
    draft.user = { ...draft.user, target: { name: clamp(targets[0] as string, 1024) } }
    draft.related = { user: targets.map(t => clamp(t, 1024)) }
  }
  if (tags.length > 0) draft.tags = tags
  return draft
}

/**
 * A record the collector cannot show: an event of kind `pipeline_error` that says so, without the content.
 * Used instead of a dead letter when the raw text may hold a credential (dead letters carry the raw line).
 */
export function withheldEvent (system: DbSystem, reason: string): EventDraft {
  return {
    event: { kind: 'pipeline_error', category: ['database'], type: ['info'], action: 'db_record_withheld', outcome: 'unknown', module: system, reason: clamp(reason, MAX_STATEMENT) },
    db: { system }
  }
}

/**
 * A line that should have been understood but was not: a dead letter with the reason — unless it looks
 * like it carries a credential, then a content-free `db_record_withheld` event (never a silent drop).
 */
export function unparseable (line: string, system: DbSystem, reason: string): ParseResult {
  if (looksSecret(line, system)) return { kind: 'event', event: withheldEvent(system, `${reason}; content withheld: it may contain a credential`) }
  return parseError(reason)
}

/**
 * Wraps a db parser so that no line can reach a dead letter with a password in it by accident: a parser
 * bug (a throw) or a draft the event schema would refuse (the collector dead-letters those WITH the raw
 * line) becomes a content-free `db_record_withheld` event or, for lines without anything secret-looking,
 * a dead letter with the reason.
 */
export function guardedParser (system: DbSystem, parser: LineParser): LineParser {
  return {
    dataset: parser.dataset,
    eventClass: parser.eventClass,
    parse (line: string, ctx: LineContext): ParseResult {
      let r: ParseResult
      try {
        r = parser.parse(line, ctx)
      } catch (err) {
        return unparseable(line, system, `parser failed: ${(err as Error).message}`)
      }
      if (r.kind !== 'event') return r
      try {
        finalizeEvent(r.event, { host: 'check', source: 'check', fileKey: '0:0', generation: 0, offset: ctx.offset, path: ctx.path }, 0, parser.dataset, parser.eventClass, ctx.readAt)
      } catch (err) {
        return { kind: 'event', event: withheldEvent(system, `event refused by the schema (${(err as Error).message}); content withheld`) }
      }
      return r
    }
  }
}
