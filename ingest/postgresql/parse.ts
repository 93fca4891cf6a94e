/**
 * PostgreSQL 15 server log → ECS events, from any of its three destinations. Pure apart from the small
 * state documented below.
 *
 * What the server must log (docs/sources/postgresql.md): `log_connections=on` (`connection authorized:`),
 * `log_disconnections=on` (`disconnection:`), `log_statement=ddl` (`statement: CREATE …` — written BEFORE
 * the statement runs, hence `event.outcome: unknown`), and the default `log_min_error_statement=error`,
 * so that a failed statement is logged again with its error (→ a second event, outcome `failure`).
 *
 * Formats:
 * - `stderr`: `log_line_prefix` + `SEVERITY:  message`; lines of a multi-line message continue with a tab
 *   and are skipped (the event is built from the first line: a statement's later lines are not in it —
 *   use csvlog or jsonlog for complete statements). An `ERROR:` line is remembered (one slot) until the
 *   `STATEMENT:` line that follows it, which yields the failure event.
 * - `csvlog`: one CSV record per entry, but a quoted field keeps its newlines, so a record can span lines.
 *   The collector hands over one line at a time; lines are joined (per file) until the quotes balance and
 *   only then parsed. The joined event takes the position (id) of the record's last line, so a replay
 *   from any checkpoint at a record boundary yields identical events. A checkpoint taken inside a record
 *   (a batch that ended mid-record, then a restart) leaves lines without their start: they become one
 *   content-free `db_record_withheld` event, never a dead letter, because they may hold a password.
 * - `jsonlog`: one JSON object per line (newlines are escaped): the most robust choice.
 */
import { SKIP, type EventDraft, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'
import { clientFrom, connectEvent, disconnectEvent, guardedParser, statementEvent, unparseable, withheldEvent, type DbSession } from '../common/db-event.ts'
import { resolvePgZone, type ZoneSetting } from '../common/zoned-time.ts'
import { compilePrefix } from './prefix.ts'

export type PostgresqlFormat = 'stderr' | 'csvlog' | 'jsonlog'

export interface PostgresqlParserOptions {
  logLinePrefix: string
  timezone?: ZoneSetting
  maxRecordBytes: number
}

/** One log entry, whatever the destination it came from. */
export interface PgRecord {
  time: string
  user?: string
  database?: string
  pid?: number
  /** Client host (IP, name or `[local]`) and port. */
  host?: string
  port?: number
  sessionId?: string
  severity: string
  sqlstate?: string
  message: string
  /** The statement an ERROR was raised for (csvlog `query`, jsonlog `statement`). */
  statement?: string
}

const TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))? (\S+)$/

/** `2026-11-29 07:04:51.297 UTC` (or `%n` epoch seconds) → ISO 8601 UTC. */
export function pgTime (text: string, zone: ZoneSetting | undefined): string | undefined {
  if (/^\d+\.\d+$/.test(text)) {
    const d = new Date(Math.round(Number(text) * 1000))
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
  }
  const m = TIME.exec(text)
  if (m === null) return undefined
  const ms = m[7] === undefined ? 0 : Math.floor(Number((m[7] + '000').slice(0, 3)))
  return resolvePgZone({ year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), hour: Number(m[4]), minute: Number(m[5]), second: Number(m[6]), ms }, m[8] as string, zone)
}

const FAILURE_SEVERITIES = new Set(['ERROR', 'FATAL', 'PANIC'])

/** FATAL messages that end a connection attempt (auth.c, postinit.c, postmaster.c of PostgreSQL 15). */
const CONNECT_FAILURES: ReadonlyArray<{ re: RegExp, user?: number, database?: number }> = [
  { re: /^password authentication failed for user "(.*)"$/s, user: 1 },
  { re: /^\w+ authentication failed for user "(.*)"$/s, user: 1 },
  { re: /^no pg_hba\.conf entry for (?:replication connection from )?host "[^"]*", user "(.*?)"(?:, database "(.*?)")?/s, user: 1, database: 2 },
  { re: /^pg_hba\.conf rejects (?:replication )?connection for host "[^"]*", user "(.*?)"(?:, database "(.*?)")?/s, user: 1, database: 2 },
  { re: /^role "(.*)" does not exist$/s, user: 1 },
  { re: /^role "(.*)" is not permitted to log in$/s, user: 1 },
  { re: /^database "(.*)" does not exist$/s, database: 1 },
  { re: /^database "(.*)" is not currently accepting connections$/s, database: 1 },
  { re: /^permission denied for database "(.*)"$/s, database: 1 },
  { re: /^too many connections for (?:role|database) "(.*)"$/s },
  { re: /^sorry, too many clients already$/s },
  { re: /^connection requires a valid client certificate$/s },
  { re: /^certificate authentication failed for user "(.*)"$/s, user: 1 },
  { re: /^(?:invalid|expected) (?:password|SASL) (?:packet|response)/s }
]

function sessionOf (r: PgRecord): DbSession {
  return {
    system: 'postgresql',
    timestamp: r.time,
    ...(r.user === undefined ? {} : { user: r.user }),
    ...(r.database === undefined ? {} : { database: r.database }),
    ...(r.pid === undefined ? {} : { pid: r.pid }),
    ...(r.sessionId === undefined ? {} : { connectionId: r.sessionId }),
    ...(r.host === undefined ? {} : { client: clientFrom(r.host, r.port) })
  }
}

function event (e: EventDraft | undefined): ParseResult {
  return e === undefined ? SKIP : { kind: 'event', event: e }
}

/** What one entry means for the audit trail. */
export function interpret (r: PgRecord): ParseResult {
  const s = sessionOf(r)
  if (r.severity === 'LOG') {
    const auth = /^(?:replication )?connection authorized: user=(\S+)(?: database=(\S+))?/.exec(r.message)
    if (auth !== null) {
      return event(connectEvent({ ...s, user: s.user ?? auth[1], ...(s.database ?? auth[2]) === undefined ? {} : { database: s.database ?? auth[2] } }, 'success'))
    }
    const disc = /^disconnection: session time: \S+ user=(.*?) database=(.*?) host=(\S+)(?: port=(\d+))?$/s.exec(r.message)
    if (disc !== null) {
      const client = s.client ?? clientFrom(disc[3], disc[4] === undefined ? undefined : Number(disc[4]))
      return event(disconnectEvent({ ...s, user: s.user ?? disc[1], database: s.database ?? disc[2], ...(client === undefined ? {} : { client }) }))
    }
    // `statement: …` (simple protocol) and `execute <name>: …` (extended protocol) as log_statement writes them.
    const stmt = /^(?:statement|execute [^:]*): (.*)$/s.exec(r.message)
    if (stmt !== null) return event(statementEvent(s, stmt[1] as string, 'unknown'))
    return SKIP
  }
  if (FAILURE_SEVERITIES.has(r.severity)) {
    if (r.severity === 'FATAL') {
      for (const f of CONNECT_FAILURES) {
        const m = f.re.exec(r.message)
        if (m === null) continue
        const user = s.user ?? (f.user === undefined ? undefined : m[f.user])
        const database = s.database ?? (f.database === undefined ? undefined : m[f.database])
        return event(connectEvent({ ...s, ...(user === undefined ? {} : { user }), ...(database === undefined ? {} : { database }) }, 'failure', { reason: r.message, ...(r.sqlstate === undefined ? {} : { errorCode: r.sqlstate }) }))
      }
    }
    if (r.statement !== undefined && r.statement !== '') {
      return event(statementEvent(s, r.statement, 'failure', { reason: r.message, ...(r.sqlstate === undefined ? {} : { errorCode: r.sqlstate }) }))
    }
  }
  return SKIP
}

// ---------------------------------------------------------------- stderr

/** `127.0.0.1(57494)`, `::1(55124)`, `[local]` → host and port. */
function splitRemote (remote: string | undefined): { host?: string, port?: number } {
  if (remote === undefined) return {}
  const m = /^(.*)\((\d+)\)$/.exec(remote)
  return m === null ? { host: remote } : { host: m[1] as string, port: Number(m[2]) }
}

function stderrParser (opts: PostgresqlParserOptions): LineParser['parse'] {
  const prefix = compilePrefix(opts.logLinePrefix)
  /** The last ERROR/FATAL of a backend, waiting for its STATEMENT line (written right after it, same write). */
  let pendingError: { pid: string | undefined, severity: string, message: string, sqlstate?: string } | undefined
  return (line: string): ParseResult => {
    // Continuation of a multi-line message (statement, DETAIL): part of the entry already handled.
    if (line.startsWith('\t')) return SKIP
    const m = prefix.match(line)
    if (m === undefined) return unparseable(line, 'postgresql', 'line does not match the configured log_line_prefix')
    const time = pgTime(m.fields.time ?? m.fields.epoch ?? '', opts.timezone)
    if (time === undefined) return unparseable(line, 'postgresql', `time zone of "${m.fields.time ?? ''}" unknown: set log_timezone = 'UTC' or the source option timezone`)
    const { host, port } = m.fields.remote !== undefined ? splitRemote(m.fields.remote) : { host: m.fields.host, port: undefined }
    const base: PgRecord = {
      time,
      severity: m.severity,
      message: m.message,
      ...(m.fields.user === undefined ? {} : { user: m.fields.user }),
      ...(m.fields.database === undefined ? {} : { database: m.fields.database }),
      ...(m.fields.pid === undefined ? {} : { pid: Number(m.fields.pid) }),
      ...(m.fields.sessionId === undefined ? {} : { sessionId: m.fields.sessionId }),
      ...(host === undefined ? {} : { host }),
      ...(port === undefined ? {} : { port }),
      ...((m.sqlstate ?? m.fields.sqlstate) === undefined ? {} : { sqlstate: m.sqlstate ?? m.fields.sqlstate })
    }
    if (m.severity === 'STATEMENT') {
      const err = pendingError
      pendingError = undefined
      if (err === undefined || err.pid !== m.fields.pid) return SKIP
      return interpret({ ...base, severity: err.severity, message: err.message, ...(err.sqlstate === undefined ? {} : { sqlstate: err.sqlstate }), statement: m.message })
    }
    if (m.severity === 'DETAIL' || m.severity === 'HINT' || m.severity === 'CONTEXT' || m.severity === 'QUERY' || m.severity === 'LOCATION') return SKIP
    pendingError = FAILURE_SEVERITIES.has(m.severity) ? { pid: m.fields.pid, severity: m.severity, message: m.message, ...(base.sqlstate === undefined ? {} : { sqlstate: base.sqlstate }) } : undefined
    return interpret(base)
  }
}

// ---------------------------------------------------------------- csvlog

/** Splits one complete CSV record (RFC 4180 quoting, as PostgreSQL writes it); undefined when malformed. */
export function splitCsv (text: string): string[] | undefined {
  const out: string[] = []
  let i = 0
  for (;;) {
    if (text[i] === '"') {
      let v = ''
      i++
      for (;;) {
        const q = text.indexOf('"', i)
        if (q < 0) return undefined
        v += text.slice(i, q)
        if (text[q + 1] === '"') { v += '"'; i = q + 2; continue }
        i = q + 1
        break
      }
      out.push(v)
    } else {
      const comma = text.indexOf(',', i)
      const end = comma < 0 ? text.length : comma
      const v = text.slice(i, end)
      if (v.includes('"')) return undefined
      out.push(v)
      i = end
    }
    if (i >= text.length) return out
    if (text[i] !== ',') return undefined
    i++
    if (i === text.length) { out.push(''); return out }
  }
}

/** csvlog columns of PostgreSQL 13–15 (leader_pid and query_id were added in 14). */
const CSV = { time: 0, user: 1, database: 2, pid: 3, from: 4, session: 5, severity: 11, sqlstate: 12, message: 13, query: 19 } as const

function csvRecord (fields: string[], zone: ZoneSetting | undefined): PgRecord | string {
  if (fields.length < 23) return `csvlog record with ${fields.length} fields (23 or more expected)`
  const f = (k: number): string | undefined => { const v = fields[k]; return v === undefined || v === '' ? undefined : v }
  const time = pgTime(f(CSV.time) ?? '', zone)
  if (time === undefined) return `time "${f(CSV.time) ?? ''}" unreadable (set log_timezone = 'UTC' or the source option timezone)`
  let host: string | undefined
  let port: number | undefined
  const from = f(CSV.from)
  if (from !== undefined) {
    const colon = from.lastIndexOf(':')
    if (from !== '[local]' && colon > 0 && /^\d+$/.test(from.slice(colon + 1))) { host = from.slice(0, colon); port = Number(from.slice(colon + 1)) } else host = from
  }
  const pid = f(CSV.pid)
  return {
    time,
    severity: f(CSV.severity) ?? '',
    message: fields[CSV.message] ?? '',
    ...(f(CSV.user) === undefined ? {} : { user: f(CSV.user) }),
    ...(f(CSV.database) === undefined ? {} : { database: f(CSV.database) }),
    ...(pid === undefined ? {} : { pid: Number(pid) }),
    ...(f(CSV.session) === undefined ? {} : { sessionId: f(CSV.session) }),
    ...(f(CSV.sqlstate) === undefined ? {} : { sqlstate: f(CSV.sqlstate) }),
    ...(f(CSV.query) === undefined ? {} : { statement: f(CSV.query) }),
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port })
  }
}

const CSV_START = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? [^,"]*,/

function quoteParity (s: string): number {
  let n = 0
  for (let i = s.indexOf('"'); i >= 0; i = s.indexOf('"', i + 1)) n++
  return n & 1
}

interface Pending { text: string, nextOffset: number, bytes: number, overflow: boolean }

function csvParser (opts: PostgresqlParserOptions): LineParser['parse'] {
  /** Per file: a record whose quotes are still open. */
  const pending = new Map<string, Pending>()
  /** Per file: offset of the next line of a record seen without its start. */
  const orphanNext = new Map<string, number>()
  /** Records cut off by a file switch, to report on the next line that would otherwise be skipped. */
  let lost = 0

  const complete = (text: string, line: string): ParseResult => {
    const fields = splitCsv(text)
    if (fields === undefined) return unparseable(line, 'postgresql', 'malformed csvlog record')
    const r = csvRecord(fields, opts.timezone)
    if (typeof r === 'string') return unparseable(text, 'postgresql', r)
    return interpret(r)
  }
  const orSkipNotice = (): ParseResult => {
    if (lost === 0) return SKIP
    lost--
    return { kind: 'event', event: withheldEvent('postgresql', 'a csvlog record was cut off (its file changed before the record was complete); its content is lost') }
  }

  return (line: string, ctx: LineContext): ParseResult => {
    const next = ctx.offset + Buffer.byteLength(line, 'utf8') + 1
    let p = pending.get(ctx.path)
    if (p !== undefined && p.nextOffset !== ctx.offset) {
      pending.delete(ctx.path)
      lost++
      p = undefined
    }
    if (p !== undefined) {
      p.bytes += next - ctx.offset
      p.nextOffset = next
      if (!p.overflow) p.text += '\n' + line
      if (!p.overflow && p.bytes > opts.maxRecordBytes) { p.overflow = true; p.text = '' }
      // The quotes of the joined text balance exactly when the parity of this line closes the record.
      const closed = quoteParity(line) === 1
      if (!closed) return SKIP
      pending.delete(ctx.path)
      if (p.overflow) return { kind: 'event', event: withheldEvent('postgresql', `csvlog record longer than maxRecordBytes (${opts.maxRecordBytes}); content withheld`) }
      return complete(p.text, p.text)
    }
    if (!CSV_START.test(line)) {
      if (orphanNext.get(ctx.path) === ctx.offset) { orphanNext.set(ctx.path, next); return SKIP }
      orphanNext.set(ctx.path, next)
      return { kind: 'event', event: withheldEvent('postgresql', 'csvlog line without the start of its record (reading began inside a multi-line record, e.g. after a restart); content withheld') }
    }
    orphanNext.delete(ctx.path)
    if (quoteParity(line) === 1) {
      pending.set(ctx.path, { text: line, nextOffset: next, bytes: next - ctx.offset, overflow: false })
      return orSkipNotice()
    }
    const r = complete(line, line)
    return r.kind === 'skip' ? orSkipNotice() : r
  }
}

// ---------------------------------------------------------------- jsonlog

function jsonParser (opts: PostgresqlParserOptions): LineParser['parse'] {
  return (line: string): ParseResult => {
    let o: Record<string, unknown>
    try {
      const v: unknown = JSON.parse(line)
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
      o = v as Record<string, unknown>
    } catch {
      return unparseable(line, 'postgresql', 'not a jsonlog object')
    }
    const str = (k: string): string | undefined => typeof o[k] === 'string' && o[k] !== '' ? o[k] : undefined
    const num = (k: string): number | undefined => typeof o[k] === 'number' && Number.isInteger(o[k]) ? o[k] : undefined
    const time = pgTime(str('timestamp') ?? '', opts.timezone)
    if (time === undefined) return unparseable(line, 'postgresql', 'jsonlog record without a readable timestamp')
    const severity = str('error_severity')
    const message = typeof o.message === 'string' ? o.message : undefined
    if (severity === undefined || message === undefined) return unparseable(line, 'postgresql', 'jsonlog record without error_severity or message')
    const r: PgRecord = { time, severity, message }
    const user = str('user'); if (user !== undefined) r.user = user
    const database = str('dbname'); if (database !== undefined) r.database = database
    const pid = num('pid'); if (pid !== undefined) r.pid = pid
    const host = str('remote_host'); if (host !== undefined) r.host = host
    const port = num('remote_port'); if (port !== undefined) r.port = port
    const session = str('session_id'); if (session !== undefined) r.sessionId = session
    const state = str('state_code'); if (state !== undefined) r.sqlstate = state
    const statement = str('statement'); if (statement !== undefined) r.statement = statement
    return interpret(r)
  }
}

export function createPostgresqlParser (format: PostgresqlFormat, opts: PostgresqlParserOptions): LineParser {
  const parse = format === 'csvlog' ? csvParser(opts) : format === 'jsonlog' ? jsonParser(opts) : stderrParser(opts)
  return guardedParser('postgresql', { dataset: 'postgresql.log', eventClass: 'db', parse })
}
