/**
 * The one text transform every anonymizing path uses (stream stage per field, `auditline anonymize` per
 * line): percent-escaped address characters decoded, every IP rewritten, personal query parameters and
 * e-mail addresses scrubbed. Pure given the mapper.
 */
import { rewriteIps, type IpMapper } from './scan.ts'

export interface ScrubOptions {
  /** Query parameter names (lowercase) whose values are replaced, e.g. `email`, `token`, `session`. */
  queryParams: ReadonlySet<string>
}

export const REDACTED = 'REDACTED'

export const DEFAULT_SCRUB_PARAMS = [
  'email', 'e-mail', 'mail', 'user', 'username', 'login', 'name', 'phone', 'tel', 'token', 'access_token',
  'id_token', 'refresh_token', 'auth', 'key', 'apikey', 'api_key', 'password', 'pass', 'pwd', 'secret',
  'session', 'sessionid', 'session_id', 'sid', 'phpsessid', 'jsessionid', 'code', 'state', 'ip', 'addr', 'address'
]

const ESCAPED_ADDRESS_CHAR = /%(?:3a|2e|5b|5d)/gi
const ESCAPES: Record<string, string> = { '%3a': ':', '%2e': '.', '%5b': '[', '%5d': ']' }
const QUERY_PAIR = /([?&;])([^=&\s"?#;]+)=([^&\s"#;]*)/g
// Local part, then @ (or %40 in URLs), then a domain with a dot: matched loosely, privacy first.
const EMAIL = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g

export function anonymizeText (text: string, map: IpMapper, opts: ScrubOptions): string {
  let s = text
  // Asked of the input, not of the rewritten text (which would have to be flattened first): decoding and
  // rewriting neither add nor remove `=`, `@` or `%` (addresses and their replacements hold none of them).
  const percent = s.includes('%')
  const equals = s.includes('=')
  const at = s.includes('@')
  // `2001%3Adb8%3A%3A1` or `192%2E0%2E2%2E1` in a URL is an address too: decode those few escapes first.
  if (percent) s = s.replace(ESCAPED_ADDRESS_CHAR, m => ESCAPES[m.toLowerCase()] ?? m)
  s = rewriteIps(s, map)
  if (equals) {
    const listed = listedPair(opts.queryParams)
    if (percent || listed === undefined || listed.test(s)) s = scrubQuery(s, opts.queryParams)
  }
  // `%40` can appear or vanish where a rewritten address meets a `%`: asked of the rewritten text.
  if (at || (percent && s.includes('%40'))) s = s.replace(EMAIL, REDACTED)
  return s
}

/**
 * `s.replace(QUERY_PAIR, …)` without building a new string for the (usual) line where no listed parameter
 * has a value, and without decodeURIComponent for names that hold no escape (it would return them as they are).
 */
function scrubQuery (s: string, params: ReadonlySet<string>): string {
  let out = ''
  let last = 0
  QUERY_PAIR.lastIndex = 0
  for (let m = QUERY_PAIR.exec(s); m !== null; m = QUERY_PAIR.exec(s)) {
    const name = m[2] as string
    if (m[3] === '') continue
    let key = name
    if (name.includes('%')) try { key = decodeURIComponent(name) } catch {}
    if (!params.has(key.toLowerCase())) continue
    out += s.slice(last, m.index) + `${m[1] as string}${name}=${REDACTED}`
    last = m.index + m[0].length
  }
  return last === 0 ? s : out + s.slice(last)
}

const LISTED = new WeakMap<ReadonlySet<string>, RegExp | undefined>()

/**
 * A quick test that a text may hold `[?&;]<listed name>=<value>`, the only shape scrubQuery changes: most
 * lines with a query hold no listed parameter and skip it. Undefined (always scrub) when a listed name is not
 * ASCII. Used only on text without `%` (an escaped name is matched after decoding). Case-insensitive by
 * Unicode simple case folding (`u`), which folds every character whose toLowerCase() is an ASCII letter (the
 * Kelvin sign too) onto it: it can only say yes more often than scrubQuery's own test.
 */
function listedPair (params: ReadonlySet<string>): RegExp | undefined {
  if (LISTED.has(params)) return LISTED.get(params)
  const names = [...params]
  // No name listed: nothing to scrub, a test that never says yes.
  const re = names.length === 0
    ? /(?!)/
    : names.every(n => /^[\x20-\x7e]+$/.test(n))
      ? new RegExp(`[?&;](?:${names.map(n => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})=[^&\\s"#;]`, 'iu')
      : undefined
  LISTED.set(params, re)
  return re
}
