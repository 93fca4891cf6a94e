/**
 * PostgreSQL `log_line_prefix` → a matcher for `stderr` log lines. Pure.
 * Escapes as documented for PostgreSQL 15 (runtime-config-logging): `%m %t %n %p %P %u %d %r %h %a %b %c
 * %l %s %v %x %e %i %Q %%`, with optional padding (`%-10u`), and `%q`, after which non-session processes
 * (postmaster, checkpointer, …) write nothing.
 */

export interface PrefixFields {
  /** `%m`/`%t` text (`2026-11-29 07:04:51.297 UTC`). */
  time?: string
  /** `%n` (`1764399891.297`). */
  epoch?: string
  pid?: string
  user?: string
  database?: string
  /** `%r`: `host(port)` or `[local]`. */
  remote?: string
  /** `%h`. */
  host?: string
  application?: string
  sessionId?: string
  sqlstate?: string
}

export interface PrefixMatch {
  fields: PrefixFields
  /** `LOG`, `ERROR`, `FATAL`, `STATEMENT`, `DETAIL`, … */
  severity: string
  /** SQLSTATE printed after the severity with `log_error_verbosity = verbose`. */
  sqlstate?: string
  message: string
}

export interface CompiledPrefix {
  match (line: string): PrefixMatch | undefined
}

const SEVERITY = '(DEBUG[1-5]?|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT)'

const ESCAPES: Readonly<Record<string, { re: string, field?: keyof PrefixFields }>> = {
  m: { re: '(\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\.\\d{3} \\S+)', field: 'time' },
  t: { re: '(\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} \\S+)', field: 'time' },
  n: { re: '(\\d+\\.\\d{3})', field: 'epoch' },
  s: { re: '(?:\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2} \\S+)?' },
  p: { re: '(\\d+)', field: 'pid' },
  P: { re: '(?:\\d*)' },
  // Names are at most 63 bytes in PostgreSQL; the bound keeps a line that does not match from backtracking long.
  u: { re: '(.{0,256}?)', field: 'user' },
  d: { re: '(.{0,256}?)', field: 'database' },
  r: { re: '(\\S{0,300})', field: 'remote' },
  h: { re: '(\\S{0,300})', field: 'host' },
  a: { re: '(.{0,256}?)', field: 'application' },
  b: { re: '(?:.{0,64}?)' },
  i: { re: '(?:.{0,256}?)' },
  c: { re: '([0-9a-f]*\\.[0-9a-f]*|)', field: 'sessionId' },
  l: { re: '(?:\\d*)' },
  v: { re: '(?:\\S*)' },
  x: { re: '(?:\\d*)' },
  e: { re: '([0-9A-Z]{5}|)', field: 'sqlstate' },
  Q: { re: '(?:-?\\d*)' }
}

function escapeRe (s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Compiles `prefix`; throws an Error naming the problem when it cannot be used. */
export function compilePrefix (prefix: string): CompiledPrefix {
  const fields: Array<keyof PrefixFields> = []
  let re = ''
  let optionalFrom = -1
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix[i] as string
    if (c !== '%') { re += escapeRe(c); continue }
    const m = /^%(-?\d+)?([A-Za-z%])/.exec(prefix.slice(i))
    if (m === null) throw new Error(`"%" at position ${i} is not followed by an escape`)
    i += m[0].length - 1
    const letter = m[2] as string
    if (letter === '%') { re += '%'; continue }
    if (letter === 'q') { optionalFrom = re.length; re += '\u0000'; continue }
    const spec = ESCAPES[letter]
    if (spec === undefined) throw new Error(`unknown escape %${letter}`)
    const padded = m[1] !== undefined
    re += (padded ? ' *' : '') + spec.re + (padded ? ' *' : '')
    if (spec.field !== undefined) fields.push(spec.field)
  }
  if (!fields.includes('time') && !fields.includes('epoch')) throw new Error('needs a time escape (%m, %t or %n)')
  if (optionalFrom >= 0) re = re.replace('\u0000', '(?:') + ')?'
  const compiled = new RegExp(`^${re}${SEVERITY}:  (?:([0-9A-Z]{5}): )?(.*)$`, 's')
  return {
    match (line: string): PrefixMatch | undefined {
      const m = compiled.exec(line)
      if (m === null) return undefined
      const out: PrefixFields = {}
      fields.forEach((f, k) => {
        const v = m[k + 1]
        if (v !== undefined && v !== '' && v !== '[unknown]') out[f] = v
      })
      return {
        fields: out,
        severity: m[fields.length + 1] as string,
        ...(m[fields.length + 2] === undefined ? {} : { sqlstate: m[fields.length + 2] }),
        message: m[fields.length + 3] as string
      }
    }
  }
}
