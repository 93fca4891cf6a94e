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
  // `2001%3Adb8%3A%3A1` or `192%2E0%2E2%2E1` in a URL is an address too: decode those few escapes first.
  if (s.includes('%')) s = s.replace(ESCAPED_ADDRESS_CHAR, m => ESCAPES[m.toLowerCase()] ?? m)
  s = rewriteIps(s, map)
  if (s.includes('=')) {
    s = s.replace(QUERY_PAIR, (whole, sep: string, name: string, value: string) => {
      if (value === '') return whole
      let key = name
      try { key = decodeURIComponent(name) } catch {}
      return opts.queryParams.has(key.toLowerCase()) ? `${sep}${name}=${REDACTED}` : whole
    })
  }
  if (s.includes('@') || s.includes('%40')) s = s.replace(EMAIL, REDACTED)
  return s
}
