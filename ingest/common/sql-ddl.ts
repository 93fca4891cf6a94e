/**
 * Classifies DDL/DCL statements into what the TOM asks about: which operation, on which object, for
 * which user. Pure. Works on the tokens of sql-lexer.ts, so quoted names, comments and literals cannot
 * confuse it; it reads only the head of a statement (verb, object type, name, grantees) and never
 * needs the rest to be valid SQL — failed statements are logged too.
 */
import { significant, tokenize, type SqlDialect, type Token } from './sql-lexer.ts'

export type DdlVerb = 'create' | 'drop' | 'alter' | 'rename' | 'truncate' | 'grant' | 'revoke' | 'comment'

export interface DdlInfo {
  /** ECS `event.action`: `db_create_database`, `db_grant`, … or `db_ddl` for object types without their own action. */
  action: string
  verb: DdlVerb
  /** `CREATE DATABASE`, `GRANT`, `SET PASSWORD`, … */
  operation: string
  /** ECS `event.type` values. */
  type: string[]
  /** ECS `event.category` values: `database`, plus `iam` for users, roles and privileges. */
  category: string[]
  /** Lower-case object type: `database`, `table`, `role`, `user`, `schema`, `function`, … */
  objectType?: string
  /** Objects the statement names, as the server resolves them (PostgreSQL folds unquoted names to lower case). */
  objects: string[]
  /** Roles or users the statement acts on or grants to (user part of a MariaDB account). */
  targetUsers: string[]
  /** GRANT/REVOKE: the privileges, upper case (`SELECT`, `ALL PRIVILEGES`). */
  privileges?: string[]
}

/** Object types with an action of their own (the TOM's "creating, deleting and editing databases", plus their parts). */
const SPECIFIC = new Set(['database', 'schema', 'table', 'view', 'index', 'role', 'user'])

/** Object type words after CREATE/ALTER/DROP; longest first where they share a prefix. */
const OBJECT_TYPES: ReadonlyArray<readonly string[]> = [
  ['MATERIALIZED', 'VIEW'], ['FOREIGN', 'DATA', 'WRAPPER'], ['FOREIGN', 'TABLE'], ['USER', 'MAPPING'],
  ['TEXT', 'SEARCH', 'CONFIGURATION'], ['TEXT', 'SEARCH', 'DICTIONARY'], ['TEXT', 'SEARCH', 'PARSER'], ['TEXT', 'SEARCH', 'TEMPLATE'],
  ['EVENT', 'TRIGGER'], ['ACCESS', 'METHOD'], ['OPERATOR', 'CLASS'], ['OPERATOR', 'FAMILY'], ['DEFAULT', 'PRIVILEGES'],
  ['LARGE', 'OBJECT'], ['LOGFILE', 'GROUP'], ['PACKAGE', 'BODY'],
  ['DATABASE'], ['SCHEMA'], ['TABLE'], ['VIEW'], ['INDEX'], ['SEQUENCE'], ['FUNCTION'], ['PROCEDURE'], ['ROUTINE'],
  ['TRIGGER'], ['EVENT'], ['ROLE'], ['USER'], ['GROUP'], ['SERVER'], ['EXTENSION'], ['TYPE'], ['DOMAIN'],
  ['TABLESPACE'], ['POLICY'], ['PUBLICATION'], ['SUBSCRIPTION'], ['AGGREGATE'], ['OPERATOR'], ['COLLATION'],
  ['CONVERSION'], ['RULE'], ['LANGUAGE'], ['CAST'], ['STATISTICS'], ['TRANSFORM'], ['PACKAGE'], ['SYNONYM'],
  ['OWNED'], ['SYSTEM']
]

/** Words between CREATE/ALTER/DROP and the object type. */
const MODIFIERS = new Set([
  'OR', 'REPLACE', 'TEMPORARY', 'TEMP', 'UNLOGGED', 'GLOBAL', 'LOCAL', 'UNIQUE', 'RECURSIVE', 'TRUSTED',
  'PROCEDURAL', 'CONSTRAINT', 'ONLINE', 'OFFLINE', 'IGNORE', 'NONATOMIC'
])

const GRANT_OBJECT_TYPES: ReadonlyArray<readonly string[]> = [
  ['ALL', 'TABLES', 'IN', 'SCHEMA'], ['ALL', 'SEQUENCES', 'IN', 'SCHEMA'], ['ALL', 'FUNCTIONS', 'IN', 'SCHEMA'],
  ['ALL', 'PROCEDURES', 'IN', 'SCHEMA'], ['ALL', 'ROUTINES', 'IN', 'SCHEMA'], ['FOREIGN', 'DATA', 'WRAPPER'],
  ['FOREIGN', 'SERVER'], ['LARGE', 'OBJECT'], ['PACKAGE', 'BODY'],
  ['TABLE'], ['SEQUENCE'], ['DATABASE'], ['SCHEMA'], ['FUNCTION'], ['PROCEDURE'], ['ROUTINE'], ['LANGUAGE'],
  ['TABLESPACE'], ['TYPE'], ['DOMAIN'], ['PARAMETER'], ['PACKAGE']
]

class Cursor {
  i = 0
  constructor (readonly toks: readonly Token[], readonly src: string, readonly dialect: SqlDialect) {}
  peek (k = 0): Token | undefined { return this.toks[this.i + k] }
  word (k = 0): string | undefined { const t = this.peek(k); return t?.type === 'word' ? t.value : undefined }
  is (...words: string[]): boolean { return words.every((w, k) => this.word(k) === w) }
  take (...words: string[]): boolean {
    if (!this.is(...words)) return false
    this.i += words.length
    return true
  }

  done (): boolean { return this.i >= this.toks.length }

  /** One name part as the server resolves it. */
  private part (t: Token): string | undefined {
    if (t.type === 'qident') return t.value
    if (t.type === 'string') return t.value
    if (t.type === 'word') {
      const raw = this.src.slice(t.start, t.end)
      // PostgreSQL folds unquoted identifiers to lower case; MariaDB keeps them as written.
      return this.dialect === 'postgresql' ? raw.toLowerCase() : raw
    }
    if (t.type === 'punct' && t.value === '*') return '*'
    return undefined
  }

  /** A possibly qualified name (`a.b.c`, `db.*`), or a MariaDB account (`'u'@'h'`). */
  name (): { name: string, user: string } | undefined {
    const first = this.peek()
    if (first === undefined) return undefined
    const head = this.part(first)
    if (head === undefined) return undefined
    this.i++
    const parts = [head]
    while (this.peek()?.value === '.' && this.peek(1) !== undefined) {
      const p = this.part(this.peek(1) as Token)
      if (p === undefined) break
      parts.push(p)
      this.i += 2
    }
    const name = parts.join('.')
    if (this.dialect === 'mariadb' && this.peek()?.value === '@' && this.peek(1) !== undefined) {
      const host = this.part(this.peek(1) as Token)
      if (host !== undefined) {
        this.i += 2
        return { name: `${name}@${host}`, user: name }
      }
    }
    // `user@host` typed without quotes is one token run in MariaDB only when quoted; a bare word stays as is.
    return { name, user: name }
  }

  /** A comma-separated list of names. */
  names (): Array<{ name: string, user: string }> {
    const out: Array<{ name: string, user: string }> = []
    for (;;) {
      const n = this.name()
      if (n === undefined) break
      out.push(n)
      if (this.peek()?.value !== ',') break
      this.i++
    }
    return out
  }

  /** Skips `=` value of MariaDB's DEFINER=, ALGORITHM=, SQL SECURITY …. */
  skipClause (): boolean {
    if (this.take('DEFINER')) {
      if (this.peek()?.value === '=') this.i++
      if (this.take('CURRENT_USER')) {
        if (this.peek()?.value === '(' && this.peek(1)?.value === ')') this.i += 2
      } else this.name()
      return true
    }
    if (this.is('ALGORITHM') && this.peek(1)?.value === '=') { this.i += 3; return true }
    if (this.take('SQL', 'SECURITY')) { this.i++; return true }
    if (this.is('AGGREGATE', 'FUNCTION')) { this.i++; return true }
    return false
  }

  objectType (types: ReadonlyArray<readonly string[]>): string | undefined {
    for (const t of types) {
      if (this.take(...t)) return t.join(' ')
    }
    return undefined
  }
}

/** The statements of `sql`, split at top-level semicolons, each as significant tokens. */
function statements (sql: string, dialect: SqlDialect): Token[][] {
  const out: Token[][] = []
  let cur: Token[] = []
  for (const t of significant(tokenize(sql, dialect))) {
    if (t.type === 'punct' && t.value === ';') {
      if (cur.length > 0) out.push(cur)
      cur = []
    } else cur.push(t)
  }
  if (cur.length > 0) out.push(cur)
  return out
}

function eventTypeOf (verb: DdlVerb): string[] {
  if (verb === 'create') return ['creation']
  if (verb === 'drop' || verb === 'truncate') return ['deletion']
  return ['change']
}

function build (verb: DdlVerb, operation: string, objectType: string | undefined, names: Array<{ name: string, user: string }>, privileges?: string[], grantees?: Array<{ name: string, user: string }>): DdlInfo {
  const iam = objectType === 'role' || objectType === 'user' || verb === 'grant' || verb === 'revoke'
  let action: string
  if (verb === 'grant' || verb === 'revoke') action = `db_${verb}`
  else if (objectType !== undefined && SPECIFIC.has(objectType) && verb !== 'comment') action = `db_${verb}_${objectType}`
  else action = 'db_ddl'
  const userObject = objectType === 'role' || objectType === 'user'
  const targets = grantees ?? (userObject ? names : [])
  return {
    action,
    verb,
    operation,
    type: eventTypeOf(verb),
    category: iam ? ['database', 'iam'] : ['database'],
    ...(objectType === undefined ? {} : { objectType }),
    objects: names.map(n => n.name),
    targetUsers: [...new Set(targets.map(n => n.user).filter(u => u !== '' && u.toUpperCase() !== 'PUBLIC'))],
    ...(privileges === undefined ? {} : { privileges })
  }
}

function normaliseType (t: string, dialect: SqlDialect): string {
  const lower = t.toLowerCase()
  if (lower === 'group') return 'role'
  // In MariaDB SCHEMA is a synonym for DATABASE.
  if (lower === 'schema' && dialect === 'mariadb') return 'database'
  return lower
}

function createAlterDrop (c: Cursor, verb: 'create' | 'alter' | 'drop', dialect: SqlDialect): DdlInfo | undefined {
  const verbWord = verb.toUpperCase()
  for (let guard = 0; guard < 12 && !c.done(); guard++) {
    if (c.skipClause()) continue
    const w = c.word()
    if (w !== undefined && MODIFIERS.has(w)) { c.i++; continue }
    break
  }
  const rawType = c.objectType(OBJECT_TYPES)
  if (rawType === undefined) {
    // An object type we do not know (the server logged it as DDL): still an event, without an object.
    const next = c.word()
    return next === undefined ? undefined : build(verb, `${verbWord} ${next}`, undefined, [])
  }
  const objectType = normaliseType(rawType, dialect)
  const operation = `${verbWord} ${rawType}`
  c.take('CONCURRENTLY')
  c.take('IF', 'NOT', 'EXISTS') || c.take('IF', 'EXISTS')
  c.take('ONLY')
  if (rawType === 'USER MAPPING') {
    c.take('FOR')
    const user = c.name()
    c.take('SERVER')
    const server = c.name()
    return build(verb, operation, 'user_mapping', server === undefined ? [] : [server], undefined, user === undefined ? [] : [user])
  }
  if (rawType === 'OWNED') {
    c.take('BY')
    return build(verb, operation, 'owned', c.names())
  }
  if (rawType === 'SYSTEM') {
    c.take('SET') || c.take('RESET')
    const n = c.name()
    return build(verb, operation, 'system', n === undefined ? [] : [n])
  }
  if (rawType === 'DEFAULT PRIVILEGES') return build(verb, operation, 'default_privileges', [])
  // `CREATE INDEX ON t (…)` has no index name.
  if (objectType === 'index' && c.word() === 'ON') return build(verb, operation, objectType, [])
  const names = verb === 'drop' || objectType === 'user' || objectType === 'role' ? c.names() : (n => n === undefined ? [] : [n])(c.name())
  return build(verb, operation, objectType, names)
}

function grantRevoke (c: Cursor, verb: 'grant' | 'revoke', dialect: SqlDialect): DdlInfo {
  const operation = verb.toUpperCase()
  if (verb === 'revoke') c.take('GRANT', 'OPTION', 'FOR') || c.take('ADMIN', 'OPTION', 'FOR') || c.take('INHERIT', 'OPTION', 'FOR')
  // Privileges (or role names) up to ON / TO / FROM at depth 0.
  const privileges: string[] = []
  let cur: string[] = []
  let depth = 0
  const start = c.i
  while (!c.done()) {
    const t = c.peek() as Token
    if (depth === 0 && t.type === 'word' && (t.value === 'ON' || t.value === 'TO' || t.value === 'FROM')) break
    if (t.value === '(') depth++
    else if (t.value === ')') depth--
    else if (depth === 0 && t.value === ',') { if (cur.length > 0) privileges.push(cur.join(' ')); cur = [] } else if (depth === 0 && t.type === 'word') cur.push(t.value)
    c.i++
  }
  if (cur.length > 0) privileges.push(cur.join(' '))
  if (c.take('ON')) {
    const rawType = c.objectType(GRANT_OBJECT_TYPES)
    const objects = c.names()
    let objectType = rawType === undefined ? undefined : normaliseType(rawType.replace(/^ALL \w+ IN /, ''), dialect)
    if (objectType === undefined) {
      const first = objects[0]?.name ?? ''
      if (dialect === 'mariadb' && first === '*.*') objectType = 'global'
      else if (dialect === 'mariadb' && (first.endsWith('.*') || first === '*')) objectType = 'database'
      else if (rawType === undefined && c.dialect === 'mariadb' && privileges.includes('PROXY')) objectType = 'user'
      else objectType = 'table'
    }
    c.take('TO') || c.take('FROM')
    const grantees = c.names()
    return build(verb, operation, objectType, objects, privileges, grantees)
  }
  if (privileges.some(p => p === 'ALL' || p === 'ALL PRIVILEGES' || p === 'GRANT OPTION')) {
    // MariaDB: REVOKE ALL PRIVILEGES, GRANT OPTION FROM user — every privilege on every object.
    c.take('TO') || c.take('FROM')
    return build(verb, operation, 'global', [], privileges, c.names())
  }
  // GRANT role[, role] TO grantee: the privileges were role names.
  c.i = start
  const roles = c.names()
  c.take('TO') || c.take('FROM')
  const grantees = c.names()
  return build(verb, operation, 'role', roles, [], grantees)
}

function classifyTokens (toks: Token[], sql: string, dialect: SqlDialect): DdlInfo | undefined {
  const c = new Cursor(toks, sql, dialect)
  // MariaDB: SET STATEMENT var=value FOR <statement>.
  if (c.is('SET', 'STATEMENT')) {
    const forAt = toks.findIndex(t => t.type === 'word' && t.value === 'FOR')
    return forAt < 0 ? undefined : classifyTokens(toks.slice(forAt + 1), sql, dialect)
  }
  const verb = c.word()
  c.i++
  switch (verb) {
    case 'CREATE': return createAlterDrop(c, 'create', dialect)
    case 'ALTER': return createAlterDrop(c, 'alter', dialect)
    case 'DROP': return createAlterDrop(c, 'drop', dialect)
    case 'GRANT': return grantRevoke(c, 'grant', dialect)
    case 'REVOKE': return grantRevoke(c, 'revoke', dialect)
    case 'RENAME': {
      const rawType = c.objectType([['TABLE'], ['USER']]) ?? 'TABLE'
      const objectType = rawType.toLowerCase()
      const names = c.names()
      return build('rename', `RENAME ${rawType}`, objectType, names)
    }
    case 'TRUNCATE': {
      c.take('TABLE')
      c.take('ONLY')
      return build('truncate', 'TRUNCATE TABLE', 'table', c.names())
    }
    case 'COMMENT': {
      if (!c.take('ON')) return undefined
      const rawType = c.objectType(OBJECT_TYPES) ?? (c.take('COLUMN') ? 'COLUMN' : undefined)
      const n = c.name()
      return build('comment', `COMMENT ON${rawType === undefined ? '' : ` ${rawType}`}`, rawType === undefined ? undefined : normaliseType(rawType, dialect), n === undefined ? [] : [n])
    }
    case 'SET': {
      if (!c.take('PASSWORD')) return undefined
      const names = c.take('FOR') ? c.names().slice(0, 1) : []
      const info = build('alter', 'SET PASSWORD', 'user', names)
      return info
    }
    default: return undefined
  }
}

/**
 * Classifies the first DDL/DCL statement in `sql` (PostgreSQL logs a multi-statement query string as
 * one line, e.g. `BEGIN; DROP TABLE t; COMMIT`). Undefined when it holds none (DML, SET, SELECT, …).
 */
export function classifyStatement (sql: string, dialect: SqlDialect): DdlInfo | undefined {
  for (const stmt of statements(sql, dialect)) {
    const info = classifyTokens(stmt, sql, dialect)
    if (info !== undefined) return info
  }
  return undefined
}
