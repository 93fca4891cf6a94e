/**
 * MariaDB `server_audit` plugin log (`server_audit_output_type=file`) → ECS events. Pure.
 *
 * One record a line, as plugin/server_audit/server_audit.c (log_header, log_connection,
 * log_statement_ex) writes it:
 *   `YYYYMMDD hh:mm:ss,serverhost,username,host,connectionid,queryid,operation,database,object,retcode`
 * - the time is the server's local time without a zone (option `timezone`);
 * - `host` is the client's host name, or its IP when the server does not resolve names
 *   (`skip-name-resolve`), or `localhost` for a Unix socket;
 * - for QUERY the object is the statement in single quotes, escaped by escape_string():
 *   `'` → `\'`, `\` → `\\`, newline → `\n`, tab → `\t`, CR → `\r`, backspace → `\b`, form feed → `\f`
 *   (so a record never spans lines); `IDENTIFIED BY '…'` is already masked as `*****` by the plugin,
 *   other password forms are not, hence redact-sql;
 * - CONNECT, DISCONNECT, FAILED_CONNECT, CHANGEUSER: `database,,status`;
 *   PROXY_CONNECT: ``database,`user`@`host`,status``; TABLE events (READ, WRITE, CREATE, …): `database,table,`.
 * The user name and the database are written unescaped; the parse takes the first split that leaves a
 * well-formed record.
 */
import { SKIP, type EventDraft, type LineContext, type LineParser, type ParseResult } from '../common/parser.ts'
import { clientFrom, connectEvent, disconnectEvent, guardedParser, statementEvent, unparseable, type DbSession } from '../common/db-event.ts'
import { wallTimeToIso, type ZoneSetting } from '../common/zoned-time.ts'

const OPERATIONS = new Set(['CONNECT', 'DISCONNECT', 'FAILED_CONNECT', 'CHANGEUSER', 'PROXY_CONNECT', 'QUERY', 'READ', 'WRITE', 'CREATE', 'ALTER', 'RENAME', 'DROP'])

const HEADER = /^(\d{4})(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2}),([^,]*),(.*?),([^,]*),(\d+),(\d+),([A-Z_]+),(.*)$/s

/** Client error numbers a FAILED_CONNECT or a failed statement typically carries, for `event.reason`. */
const ERRORS: Readonly<Record<string, string>> = {
  1044: 'access denied to the database',
  1045: 'access denied (wrong user name or password)',
  1049: 'unknown database',
  1040: 'too many connections',
  1129: 'host blocked because of many connection errors',
  1130: 'host is not allowed to connect',
  1203: 'user has exceeded max_user_connections',
  1226: 'user has exceeded a resource limit',
  1251: 'client does not support the authentication protocol',
  1698: 'access denied (authentication plugin refused)',
  1820: 'password must be reset (expired)',
  1862: 'password has expired',
  4151: 'account is locked',
  1007: 'database exists',
  1008: 'database does not exist',
  1050: 'table exists',
  1051: 'unknown table',
  1064: 'syntax error',
  1142: 'command denied to user',
  1227: 'access denied (missing privilege)',
  1396: 'operation on the user failed (user exists or does not exist)',
  1524: 'authentication plugin is not loaded'
}

function reasonOf (code: string): string {
  return ERRORS[code] === undefined ? `MariaDB error ${code}` : `MariaDB error ${code}: ${ERRORS[code]}`
}

/** Undoes escape_string(): returns the statement, or undefined when `s` is not one escaped quoted string. */
export function unescapeAuditString (s: string): string | undefined {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (c === '\'') return undefined // an unescaped quote ends the string early: not this split
    if (c !== '\\') { out += c; continue }
    const n = s[++i]
    switch (n) {
      case 'n': out += '\n'; break
      case 't': out += '\t'; break
      case 'r': out += '\r'; break
      case 'b': out += '\b'; break
      case 'f': out += '\f'; break
      case '\'': out += '\''; break
      case '\\': out += '\\'; break
      case undefined: return undefined
      default: out += '\\' + n // not written by the plugin; kept verbatim
    }
  }
  return out
}

/** `database,'escaped query',retcode` → parts; the database may hold `,'` itself, so every split is tried. */
export function splitQueryRest (rest: string): { database: string, query: string, retcode: string } | undefined {
  const tail = /',(-?\d+)$/.exec(rest)
  if (tail === null) return undefined
  const body = rest.slice(0, tail.index)
  for (let at = body.indexOf(',\''); at >= 0; at = body.indexOf(',\'', at + 1)) {
    const query = unescapeAuditString(body.slice(at + 2))
    if (query !== undefined) return { database: body.slice(0, at), query, retcode: tail[1] as string }
  }
  return undefined
}

export interface MariadbParserOptions {
  timezone: ZoneSetting
}

export function createMariadbParser (opts: MariadbParserOptions): LineParser {
  return guardedParser('mariadb', {
    dataset: 'mariadb.audit',
    eventClass: 'db',
    parse (line: string, _ctx: LineContext): ParseResult {
      const m = HEADER.exec(line)
      if (m === null) return unparseable(line, 'mariadb', 'not a server_audit record (YYYYMMDD hh:mm:ss,serverhost,user,host,connection,query,operation,…)')
      const operation = m[12] as string
      if (!OPERATIONS.has(operation)) return unparseable(line, 'mariadb', `unknown server_audit operation ${operation}`)
      const timestamp = wallTimeToIso({ year: Number(m[1]), month: Number(m[2]), day: Number(m[3]), hour: Number(m[4]), minute: Number(m[5]), second: Number(m[6]), ms: 0 }, opts.timezone)
      if (timestamp === undefined) return unparseable(line, 'mariadb', 'impossible timestamp')
      const session: DbSession = {
        system: 'mariadb',
        timestamp,
        serverHost: m[7] as string,
        user: m[8] as string,
        client: clientFrom(m[9] as string),
        connectionId: m[10] as string
      }
      const rest = m[13] as string
      const event = record(session, operation, rest)
      if (event === undefined) return SKIP
      if (event === null) return unparseable(line, 'mariadb', `malformed ${operation} record`)
      return { kind: 'event', event }
    }
  })
}

/** The event of one record; undefined to skip it, null when it is malformed. */
function record (s: DbSession, operation: string, rest: string): EventDraft | undefined | null {
  switch (operation) {
    case 'CONNECT':
    case 'FAILED_CONNECT':
    case 'CHANGEUSER':
    case 'DISCONNECT': {
      const c = /^(.*),,(-?\d+)$/s.exec(rest)
      if (c === null) return null
      const session = { ...s, database: c[1] as string }
      const status = c[2] as string
      if (operation === 'DISCONNECT') return disconnectEvent(session)
      const failed = operation === 'FAILED_CONNECT' || status !== '0'
      const e = failed ? connectEvent(session, 'failure', { errorCode: status, reason: reasonOf(status) }) : connectEvent(session, 'success')
      if (operation === 'CHANGEUSER') e.event.action = 'db_change_user'
      return e
    }
    case 'PROXY_CONNECT': {
      const p = /^(.*),`(.*)`@`(.*)`,(-?\d+)$/s.exec(rest)
      if (p === null) return null
      const e = connectEvent({ ...s, database: p[1] as string }, p[4] === '0' ? 'success' : 'failure')
      e.event.action = 'db_proxy_connect'
      if ((p[2] as string) !== '') e.user = { ...e.user, effective: { name: p[2] as string } }
      return e
    }
    case 'QUERY': {
      const q = splitQueryRest(rest)
      if (q === undefined) return null
      const ok = q.retcode === '0'
      return statementEvent({ ...s, database: q.database }, q.query, ok ? 'success' : 'failure', ok ? {} : { errorCode: q.retcode, reason: reasonOf(q.retcode) })
    }
    default:
      // TABLE events (server_audit_events=TABLE) repeat what the QUERY record says.
      return undefined
  }
}
