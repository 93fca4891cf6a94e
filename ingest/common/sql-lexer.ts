/**
 * A small, tolerant SQL tokenizer for the two dialects whose logs we read. Pure.
 * It exists so that redaction (redact-sql.ts) and statement classification (sql-ddl.ts) see the same
 * literals, identifiers and comments the server saw — a regex over the raw text cannot tell a password
 * literal from a quoted identifier or a comment. It never throws: unterminated literals and comments end
 * at the end of the input (statements in logs can be cut by the server's length limit).
 *
 * Dialect differences that matter here:
 * - postgresql: '…' with '' (backslash is literal, standard_conforming_strings=on), E'…' with backslash
 *   escapes, U&'…', B'…', X'…', $tag$…$tag$ dollar quotes, "…" identifiers, nested /* *\/ comments.
 * - mariadb: '…' and "…" are strings with backslash escapes and doubled quotes, `…` identifiers,
 *   _charset'…', N'…', X'…', B'…' introducers, # and "-- " comments, /*!NNNNN … *\/ executable comments
 *   (their content is SQL the server runs, so it is tokenized, not skipped).
 */
export type SqlDialect = 'postgresql' | 'mariadb'

export type TokenType = 'ws' | 'comment' | 'word' | 'qident' | 'string' | 'number' | 'punct' | 'param'

export interface Token {
  type: TokenType
  /** Offset of the first character in the input. */
  start: number
  /** Offset after the last character. */
  end: number
  /** Words: the upper-cased word; quoted identifiers: the unquoted name; strings: the unescaped content. */
  value: string
  /** Strings: the end had the backslash rule been the other one (see `stringEndAlternatives`). */
  altEnd?: number
  /** Strings and quoted identifiers: no closing quote before the end of the input. */
  unterminated?: boolean
}

const WORD_START = /[A-Za-z_\u0080-\uFFFF]/
const WORD_CHAR = /[A-Za-z0-9_$\u0080-\uFFFF]/
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uFFFF][A-Za-z0-9_\u0080-\uFFFF]*)?\$/

/** Scans a quoted run starting at `open` (the quote); returns the end offset, the content and termination. */
function scanQuoted (src: string, open: number, quote: string, backslash: boolean): { end: number, value: string, terminated: boolean } {
  let i = open + 1
  let value = ''
  while (i < src.length) {
    const c = src[i] as string
    if (backslash && c === '\\' && i + 1 < src.length) {
      value += unescapeBackslash(src[i + 1] as string)
      i += 2
      continue
    }
    if (c === quote) {
      if (src[i + 1] === quote) { value += quote; i += 2; continue }
      return { end: i + 1, value, terminated: true }
    }
    value += c
    i++
  }
  return { end: src.length, value, terminated: false }
}

function unescapeBackslash (c: string): string {
  switch (c) {
    case 'n': return '\n'
    case 't': return '\t'
    case 'r': return '\r'
    case 'b': return '\b'
    case 'f': return '\f'
    case '0': return '\0'
    case 'Z': return '\x1a'
    default: return c
  }
}

/** Reads one token at `pos`. */
export function nextToken (src: string, pos: number, dialect: SqlDialect): Token {
  const c = src[pos] as string
  const c2 = src[pos + 1]
  // Whitespace.
  if (/\s/.test(c)) {
    let i = pos + 1
    while (i < src.length && /\s/.test(src[i] as string)) i++
    return { type: 'ws', start: pos, end: i, value: ' ' }
  }
  // Comments.
  if (c === '-' && c2 === '-' && (dialect === 'postgresql' || src[pos + 2] === undefined || /\s/.test(src[pos + 2] as string))) {
    const nl = src.indexOf('\n', pos)
    const end = nl < 0 ? src.length : nl
    return { type: 'comment', start: pos, end, value: src.slice(pos + 2, end) }
  }
  if (c === '#' && dialect === 'mariadb') {
    const nl = src.indexOf('\n', pos)
    const end = nl < 0 ? src.length : nl
    return { type: 'comment', start: pos, end, value: src.slice(pos + 1, end) }
  }
  if (c === '/' && c2 === '*') {
    if (dialect === 'mariadb') {
      // /*!50001 … */ and /*M!100301 … */: the server executes the content; only the opener is skipped.
      const exec = /^\/\*M?!\d*/.exec(src.slice(pos, pos + 16))
      if (exec !== null) return { type: 'ws', start: pos, end: pos + exec[0].length, value: ' ' }
    }
    let depth = 1
    let i = pos + 2
    while (i < src.length && depth > 0) {
      if (src[i] === '*' && src[i + 1] === '/') { depth--; i += 2; continue }
      if (dialect === 'postgresql' && src[i] === '/' && src[i + 1] === '*') { depth++; i += 2; continue }
      i++
    }
    return { type: 'comment', start: pos, end: i, value: src.slice(pos + 2, Math.max(pos + 2, i - 2)) }
  }
  if (c === '*' && c2 === '/' && dialect === 'mariadb') {
    // Closer of an executable comment.
    return { type: 'ws', start: pos, end: pos + 2, value: ' ' }
  }
  // Dollar quotes (PostgreSQL) and positional parameters.
  if (c === '$' && dialect === 'postgresql') {
    const m = DOLLAR_TAG.exec(src.slice(pos, pos + 128))
    if (m !== null) {
      const tag = m[0]
      const close = src.indexOf(tag, pos + tag.length)
      if (close < 0) return { type: 'string', start: pos, end: src.length, value: src.slice(pos + tag.length), unterminated: true, altEnd: src.length }
      return { type: 'string', start: pos, end: close + tag.length, value: src.slice(pos + tag.length, close), altEnd: close + tag.length }
    }
    const p = /^\$\d+/.exec(src.slice(pos, pos + 12))
    if (p !== null) return { type: 'param', start: pos, end: pos + p[0].length, value: p[0] }
  }
  // Strings with an introducer: E'…', N'…', X'…', B'…', U&'…' and MariaDB's _charset'…'.
  const intro = introducer(src, pos, dialect)
  if (intro !== undefined) return stringAt(src, pos, pos + intro.length, intro.backslash)
  if (c === '\'') return stringAt(src, pos, pos, dialect === 'mariadb')
  if (c === '"') {
    if (dialect === 'mariadb') return stringAt(src, pos, pos, true)
    const q = scanQuoted(src, pos, '"', false)
    return { type: 'qident', start: pos, end: q.end, value: q.value, ...(q.terminated ? {} : { unterminated: true }) }
  }
  if (c === '`' && dialect === 'mariadb') {
    const q = scanQuoted(src, pos, '`', false)
    return { type: 'qident', start: pos, end: q.end, value: q.value, ...(q.terminated ? {} : { unterminated: true }) }
  }
  if (WORD_START.test(c)) {
    let i = pos + 1
    while (i < src.length && WORD_CHAR.test(src[i] as string)) i++
    return { type: 'word', start: pos, end: i, value: src.slice(pos, i).toUpperCase() }
  }
  if (/[0-9]/.test(c) || (c === '.' && c2 !== undefined && /[0-9]/.test(c2))) {
    const m = /^(?:0[xX][0-9A-Fa-f]+|0[bB][01]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)/.exec(src.slice(pos, pos + 128))
    const len = m === null || m[0] === '' ? 1 : m[0].length
    // A MariaDB identifier may start with digits (`1abc`): keep letters that follow in the same token.
    let i = pos + len
    while (i < src.length && WORD_CHAR.test(src[i] as string)) i++
    return { type: i > pos + len ? 'word' : 'number', start: pos, end: i, value: src.slice(pos, i).toUpperCase() }
  }
  return { type: 'punct', start: pos, end: pos + 1, value: c }
}

function introducer (src: string, pos: number, dialect: SqlDialect): { length: number, backslash: boolean } | undefined {
  const head = src.slice(pos, pos + 72)
  if (dialect === 'postgresql') {
    if (/^[eE]'/.test(head)) return { length: 1, backslash: true }
    if (/^[uU]&'/.test(head)) return { length: 2, backslash: false }
    if (/^[bBxXnN]'/.test(head)) return { length: 1, backslash: false }
    return undefined
  }
  if (/^[nNxXbB]'/.test(head)) return { length: 1, backslash: true }
  const cs = /^_[A-Za-z0-9]+(?=['"])/.exec(head)
  if (cs !== null) return { length: cs[0].length, backslash: true }
  return undefined
}

function stringAt (src: string, start: number, quoteAt: number, backslash: boolean): Token {
  const quote = src[quoteAt] as string
  const q = scanQuoted(src, quoteAt, quote, backslash)
  // The server's backslash rule may differ from the one assumed here (NO_BACKSLASH_ESCAPES,
  // standard_conforming_strings=off): the alternative end lets redaction cover both readings.
  const alt = scanQuoted(src, quoteAt, quote, !backslash)
  return {
    type: 'string',
    start,
    end: q.end,
    value: q.value,
    altEnd: alt.end,
    ...(q.terminated ? {} : { unterminated: true })
  }
}

/** All tokens of `src`, in order, covering every character. */
export function tokenize (src: string, dialect: SqlDialect): Token[] {
  const out: Token[] = []
  let pos = 0
  while (pos < src.length) {
    const t = nextToken(src, pos, dialect)
    out.push(t)
    pos = t.end
  }
  return out
}

/** Tokens that carry meaning (no whitespace or comments). */
export function significant (tokens: readonly Token[]): Token[] {
  return tokens.filter(t => t.type !== 'ws' && t.type !== 'comment')
}
