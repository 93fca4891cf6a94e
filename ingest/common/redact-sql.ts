/**
 * Removes secrets from SQL text before it leaves a collector. Pure.
 *
 * PostgreSQL with `log_statement=ddl` writes `CREATE ROLE … PASSWORD '…'` in clear text, and MariaDB's
 * server_audit masks only some forms (`IDENTIFIED BY`), so every statement a db collector emits goes
 * through here (design notes §8). A secret is replaced by `'*****'`. Three rules, from precise to blunt:
 *
 * 1. Value after a trigger: `IDENTIFIED BY`, `IDENTIFIED VIA|WITH … USING|AS|BY`, any `…PASSWORD`/`PASSWD`
 *    word (`PASSWORD`, `ENCRYPTED PASSWORD`, `MASTER_PASSWORD`, option names in `OPTIONS (password …)`,
 *    `PASSWORD(…)`/`OLD_PASSWORD(…)` calls) and the `=` of `SET PASSWORD`: the next literal (string,
 *    dollar-quoted, E'…', _charset'…') — or a bare word or number, since failed statements with typos are
 *    logged too — is masked, unless it is a keyword such as NULL.
 * 2. Credential-bearing statements (role/user/server/subscription/user mapping/replication source
 *    statements, anything with OPTIONS or a password trigger): every literal is masked, except MariaDB
 *    account names (`'app'@'%'`). This covers syntax we do not know and typos (`PASSWRD '…'`).
 * 3. Anywhere: a literal or comment whose content looks like it carries a credential (`password=` in a
 *    conninfo string, `user:pw@` in a URI, a DO/function body that sets a password) is masked whole.
 *
 * When the server's backslash rule is uncertain (standard_conforming_strings, NO_BACKSLASH_ESCAPES) a
 * masked literal extends to the later of the two possible ends: masking too much is safe, too little not.
 */
import { nextToken, tokenize, type SqlDialect, type Token } from './sql-lexer.ts'

export const MASK = '\'*****\''

export interface Redaction {
  /** The statement with secrets replaced by `'*****'`. */
  text: string
  /**
   * Values masked by rule 1 (certain secrets), for scrubbing other fields of the same event, e.g. a
   * server error message that quotes the value back (`syntax error at or near "…"`).
   */
  secrets: string[]
  /** A statement that can carry credentials (rule 2/3 applied): quote-bearing messages about it must be masked too. */
  credential: boolean
  /** Anything was masked. */
  changed: boolean
}

const PASSWORDISH = /^(?:[A-Z0-9]+_)*(?:PASSWORD|PASSWD|PWD|PASSPHRASE|SECRET)$/
const SECRET_CONTENT = /passw(?:or)?d|passphrase|identified\s+(?:by|via|with)|\bsecret\b|:\/\/[^/\s:@]*:[^/\s@]*@/i
/** Words that may follow a trigger without being its value. */
const NOT_A_VALUE = new Set([
  'NULL', 'DEFAULT', 'EXPIRE', 'FOR', 'LOCK', 'UNLOCK', 'REUSE', 'HISTORY', 'REQUIRE', 'VALID', 'IN', 'ROLE',
  'INTERVAL', 'NEVER', 'ACCOUNT', 'WITH', 'LOGIN', 'NOLOGIN', 'ON', 'TO', 'FROM', 'AND', 'OR', 'VIA',
  // Connectors of `IDENTIFIED WITH plugin AS|BY|USING …`: they re-arm the trigger below.
  'AS', 'BY', 'USING'
])
/** Statement heads that carry credentials. */
const CREDENTIAL_HEADS: ReadonlyArray<readonly string[]> = [
  ['CREATE', 'ROLE'], ['ALTER', 'ROLE'], ['CREATE', 'USER'], ['ALTER', 'USER'], ['CREATE', 'GROUP'], ['ALTER', 'GROUP'],
  ['CREATE', 'SERVER'], ['ALTER', 'SERVER'], ['CREATE', 'SUBSCRIPTION'], ['ALTER', 'SUBSCRIPTION'],
  ['SET', 'PASSWORD'], ['CHANGE', 'MASTER'], ['CHANGE', 'REPLICATION'], ['ALTER', 'SYSTEM'], ['GRANT'],
  ['CREATE', 'OR', 'REPLACE', 'USER'], ['CREATE', 'OR', 'REPLACE', 'ROLE'], ['CREATE', 'OR', 'REPLACE', 'SERVER']
]

interface StatementInfo {
  start: number
  end: number
  /** Rule 2 applies: mask every literal. */
  credential: boolean
  /** A statement about credentials by its head (or with IDENTIFIED): a bare word after a trigger is a typed password. */
  strong: boolean
  /** PostgreSQL option lists: a quoted option name ("password") is a trigger too. */
  options: boolean
  setPassword: boolean
}

function isTriggerToken (t: Token, options = false): boolean {
  return (t.type === 'word' || (options && t.type === 'qident')) && PASSWORDISH.test(t.value.toUpperCase())
}

function isLiteral (t: Token): boolean {
  return t.type === 'string'
}

/** Statement ranges and whether each can carry credentials (first pass, primary lexing rules). */
function statements (tokens: readonly Token[]): StatementInfo[] {
  const out: StatementInfo[] = []
  let cur: Token[] = []
  let start = 0
  const flush = (end: number): void => {
    const sig = cur.filter(t => t.type !== 'ws' && t.type !== 'comment')
    const words = sig.slice(0, 4).map(t => t.type === 'word' ? t.value : '')
    const head = CREDENTIAL_HEADS.some(h => h.every((w, i) => words[i] === w))
    const trigger = sig.some(t => (t.type === 'word' && isTriggerToken(t)) || (t.type === 'word' && (t.value === 'IDENTIFIED' || t.value === 'OPTIONS' || t.value === 'CONNECTION')))
    const content = cur.some(t => (t.type === 'string' || t.type === 'comment') && SECRET_CONTENT.test(t.value))
    const identified = sig.some(t => t.type === 'word' && t.value === 'IDENTIFIED')
    const options = sig.some(t => t.type === 'word' && t.value === 'OPTIONS')
    out.push({ start, end, credential: head || trigger || content, strong: head || identified, options, setPassword: words[0] === 'SET' && words[1] === 'PASSWORD' })
    cur = []
    start = end
  }
  for (const t of tokens) {
    cur.push(t)
    if (t.type === 'punct' && t.value === ';') flush(t.end)
  }
  if (cur.length > 0 || out.length === 0) flush(tokens.length === 0 ? 0 : (tokens[tokens.length - 1] as Token).end)
  return out
}

function peekSignificant (src: string, pos: number, dialect: SqlDialect): Token | undefined {
  while (pos < src.length) {
    const t = nextToken(src, pos, dialect)
    if (t.type !== 'ws' && t.type !== 'comment') return t
    pos = t.end
  }
  return undefined
}

/** The text between the quotes of a string literal as written (escapes not resolved). */
function rawInner (sql: string, start: number, end: number): string {
  const text = sql.slice(start, end)
  const dollar = /^\$[^$]*\$/.exec(text)
  if (dollar !== null) return text.endsWith(dollar[0]) && text.length >= 2 * dollar[0].length ? text.slice(dollar[0].length, -dollar[0].length) : text.slice(dollar[0].length)
  const q = text.search(/['"]/)
  if (q < 0) return text
  const quote = text[q] as string
  return text.length > q + 1 && text.endsWith(quote) ? text.slice(q + 1, -1) : text.slice(q + 1)
}

/** Redacts secrets from one statement (or several separated by `;`). */
export function redactSql (sql: string, dialect: SqlDialect): Redaction {
  const stmts = statements(tokenize(sql, dialect))
  const secrets: string[] = []
  let out = ''
  let changed = false
  let credentialAny = false
  let pos = 0
  let prev: Token | undefined
  /** A trigger was seen: the next value is a secret. */
  let expect = false
  /** `IDENTIFIED` was seen in this statement: BY/USING/AS introduce a value. */
  let identified = false
  let stmtStart = -1
  /** Index into `stmts`: tokens come in order, so it only moves forward. */
  let si = 0

  const mask = (t: Token, secret: boolean): void => {
    let end = Math.max(t.end, t.altEnd ?? t.end)
    if (t.type === 'word' || t.type === 'number') {
      // A bare secret (a typo'd statement) runs to the next blank or delimiter: `PASSWORD S3cret-x;`.
      const stop = sql.slice(t.start).search(/[\s,;)]/)
      end = stop < 0 ? sql.length : t.start + stop
    }
    out += MASK
    changed = true
    if (secret) {
      // The value as the server may echo it: unescaped content and, for strings, the raw text between the quotes.
      secrets.push(t.type === 'word' || t.type === 'number' ? sql.slice(t.start, end) : t.value)
      if (t.type === 'string') secrets.push(rawInner(sql, t.start, end))
    }
    pos = end
    prev = t
  }

  while (pos < sql.length) {
    const t = nextToken(sql, pos, dialect)
    while (si < stmts.length - 1 && t.start >= (stmts[si] as StatementInfo).end) si++
    const st = stmts[si] as StatementInfo
    if (st.start !== stmtStart) { stmtStart = st.start; identified = false; expect = false }
    if (st.credential) credentialAny = true

    if (t.type === 'ws') { out += sql.slice(t.start, t.end); pos = t.end; continue }
    if (t.type === 'comment') {
      if (SECRET_CONTENT.test(t.value)) { out += '/* ***** */'; changed = true } else out += sql.slice(t.start, t.end)
      pos = t.end
      continue
    }

    if (expect) {
      // A literal is a value; a bare word or number only where a password is the only thing it can be.
      const bare = t.type === 'number' || (t.type === 'word' && !NOT_A_VALUE.has(t.value) && !isTriggerToken(t, st.options))
      const valueLike = isLiteral(t) || (t.type === 'qident' && !st.options) || (bare && st.strong)
      if (t.type === 'punct' && (t.value === '=' || t.value === '(')) {
        // `PASSWORD = '…'`, `PASSWORD('…')`: the value is still to come.
      } else if (valueLike && t.type === 'word' && peekSignificant(sql, t.end, dialect)?.value === '(') {
        // `USING SOME_FUNC('…')`: a call; its argument is the value.
      } else if (valueLike) {
        expect = false
        mask(t, true)
        continue
      } else if (!isTriggerToken(t, st.options)) {
        expect = false
      }
    }

    if (t.type === 'word') {
      if (t.value === 'IDENTIFIED') identified = true
      if (identified && (t.value === 'BY' || t.value === 'USING' || t.value === 'AS')) expect = true
    }
    if (isTriggerToken(t, st.options)) expect = true
    if (st.setPassword && t.type === 'punct' && t.value === '=') expect = true

    if (isLiteral(t)) {
      const content = SECRET_CONTENT.test(t.value)
      const account = prev?.value === '@' || peekSignificant(sql, t.end, dialect)?.value === '@'
      if (content || (st.credential && !account)) {
        mask(t, false)
        continue
      }
    }
    out += sql.slice(t.start, t.end)
    pos = t.end
    prev = t
  }
  return { text: out, secrets: [...new Set(secrets.filter(s => s !== ''))], credential: credentialAny, changed }
}

/** Secrets shorter than this are not scrubbed from other fields (a one-letter "password" would mangle everything). */
const MIN_SCRUB = 4

/** Replaces every occurrence of a known secret in `text` by `*****`. */
export function scrubSecrets (text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) {
    if (s.length >= MIN_SCRUB && out.includes(s)) out = out.split(s).join('*****')
  }
  return out
}

/**
 * A server message about a credential-bearing statement: PostgreSQL quotes offending input back in
 * double quotes (`syntax error at or near "hunter2"`), so every quoted part is masked — except names the
 * statement is known to act on (`role "app_rw" already exists`), passed in `keep`.
 */
export function maskQuoted (message: string, keep: ReadonlySet<string> = new Set()): string {
  return message.replace(/"((?:[^"]|"")*)"/g, (all, inner: string) => keep.has(inner.replaceAll('""', '"')) ? all : '"*****"')
}

/** Whether `text` would be changed by redaction: used to keep such lines out of dead letters. */
export function looksSecret (text: string, dialect: SqlDialect): boolean {
  return SECRET_CONTENT.test(text) || redactSql(text, dialect).changed
}
