/**
 * Access-log formats as nginx `log_format` strings, compiled once into one anchored regular expression
 * plus a list of which capture goes where. Pure.
 *
 * Both servers quote free-text fields and escape inside them: nginx (escape=default) writes `"`, `\`, control
 * and non-ASCII bytes as `\xHH`; apache writes `\"`, `\\`, `\n`… and `\xhh`. A quoted field is therefore
 * `"(?:[^"\\]|\\.)*"` for both, and `unescape` turns the escapes back into text.
 */

/** Variables the record maps (anything else must still match, and stays only in `event.original`). */
export const KNOWN_VARIABLES = [
  'remote_addr', 'remote_port', 'remote_user', 'time_local', 'time_iso8601', 'msec', 'request', 'status',
  'body_bytes_sent', 'bytes_sent', 'request_length', 'http_referer', 'http_user_agent', 'http_x_forwarded_for',
  'host', 'http_host', 'server_name', 'server_port', 'request_time', 'scheme', 'request_method', 'request_uri',
  'uri', 'args', 'query_string', 'server_protocol'
] as const

export type Variable = typeof KNOWN_VARIABLES[number]

const KNOWN = new Set<string>(KNOWN_VARIABLES)

/** Value shapes outside quotes; `-` is what both servers write for "no value". */
const UNQUOTED: Partial<Record<Variable, string>> = {
  // Lazy: a basic-auth name may hold spaces (nginx does not escape them); the strict time field after it anchors it.
  remote_user: '.*?',
  time_local: '\\d{2}/[A-Z][a-z]{2}/\\d{4}:\\d{2}:\\d{2}:\\d{2} [+-]\\d{4}',
  time_iso8601: '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)?(?:Z|[+-]\\d{2}:?\\d{2})',
  msec: '\\d+(?:\\.\\d+)?',
  status: '\\d{3}|-',
  body_bytes_sent: '\\d+|-',
  bytes_sent: '\\d+|-',
  request_length: '\\d+|-',
  remote_port: '\\d+|-',
  server_port: '\\d+|-',
  request_time: '\\d+(?:\\.\\d+)?|-'
}

const QUOTED = '(?:[^"\\\\]|\\\\.)*'

/** Debian's and upstream's named formats, written as nginx variables (`$ident` is apache's `%l`, unmapped). */
export const NAMED_FORMATS = {
  /** nginx `combined`; apache `combined` with `%b` (upstream). Debian's apache2 `combined` logs `%O` instead: use `custom`. */
  combined: '$remote_addr $ident $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"',
  /** apache `vhost_combined`: `%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`. */
  vhost_combined: '$server_name:$server_port $remote_addr $ident $remote_user [$time_local] "$request" $status $bytes_sent "$http_referer" "$http_user_agent"'
} as const

export interface CompiledFormat {
  /** The format as given. */
  readonly source: string
  /** The known variables, in capture order (`undefined` for captures of unknown variables). */
  readonly fields: ReadonlyArray<Variable | undefined>
  readonly re: RegExp
  /** Variable names the format uses (known or not). */
  readonly variables: ReadonlySet<string>
}

const VAR = /\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g

function escapeRe (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

/**
 * Compiles an nginx `log_format` string (`$var` or `${var}`, everything else literal). Throws a plain Error
 * with a reason when the format cannot be used (the caller turns it into AUD_ERR_CONFIG_INVALID).
 */
export function compileLogFormat (format: string): CompiledFormat {
  const parts: Array<{ lit: string } | { name: string }> = []
  let last = 0
  for (const m of format.matchAll(VAR)) {
    if (m.index > last) parts.push({ lit: format.slice(last, m.index) })
    parts.push({ name: (m[1] ?? m[2]) as string })
    last = m.index + m[0].length
  }
  if (last < format.length) parts.push({ lit: format.slice(last) })
  let src = '^'
  const fields: Array<Variable | undefined> = []
  const variables = new Set<string>()
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as { lit: string } | { name: string }
    if ('lit' in p) { src += escapeRe(p.lit); continue }
    const prev = parts[i - 1]
    const next = parts[i + 1]
    if (next !== undefined && 'name' in next) throw new Error(`$${p.name} and $${next.name} follow each other with nothing between them: the line cannot be split`)
    variables.add(p.name)
    const quoted = prev !== undefined && 'lit' in prev && prev.lit.endsWith('"') && next !== undefined && next.lit.startsWith('"')
    let pattern: string
    if (quoted) pattern = QUOTED
    else if (UNQUOTED[p.name as Variable] !== undefined) pattern = UNQUOTED[p.name as Variable] as string
    // Up to the next literal character (a space, `]`, `:` …), or the rest of the line when it is the last field.
    else pattern = next === undefined ? '.*' : `[^${escapeRe((next as { lit: string }).lit[0] as string)}]*`
    src += `(${pattern})`
    fields.push(KNOWN.has(p.name) ? p.name as Variable : undefined)
  }
  return { source: format, fields, re: new RegExp(src + '$'), variables }
}

/** The captured values of one line by variable, or undefined when the line does not have the format's shape. */
export function matchLine (f: CompiledFormat, line: string): Partial<Record<Variable, string>> | undefined {
  const m = f.re.exec(line)
  if (m === null) return undefined
  const out: Partial<Record<Variable, string>> = {}
  for (let i = 0; i < f.fields.length; i++) {
    const name = f.fields[i]
    if (name !== undefined) out[name] = m[i + 1] as string
  }
  return out
}

const SIMPLE: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', r: '\r', t: '\t', b: '\b', v: '\v' }
const utf8 = new TextDecoder('utf-8', { fatal: true })
const latin1 = new TextDecoder('latin1')

/**
 * Undoes the servers' log escaping (`\xHH`, `\"`, `\\`, `\n` …). Escaped bytes are UTF-8 text as a rule;
 * bytes that are not UTF-8 (a Latin-1 client) are read as Latin-1, so that no byte turns into U+FFFD.
 */
export function unescape (s: string): string {
  if (!s.includes('\\')) return s
  const bytes: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x5c && i + 1 < s.length) {
      const n = s[i + 1] as string
      if ((n === 'x' || n === 'X') && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 2, i + 4))) {
        bytes.push(parseInt(s.slice(i + 2, i + 4), 16))
        i += 3
        continue
      }
      const simple = SIMPLE[n]
      if (simple !== undefined) {
        bytes.push(simple.charCodeAt(0))
        i += 1
        continue
      }
    }
    if (c < 0x80) { bytes.push(c); continue }
    const ch = String.fromCodePoint(s.codePointAt(i) as number)
    for (const b of Buffer.from(ch, 'utf8')) bytes.push(b)
    i += ch.length - 1
  }
  const u8 = Uint8Array.from(bytes)
  try {
    return utf8.decode(u8)
  } catch {
    return latin1.decode(u8)
  }
}
