/**
 * Finds every IP address in a string and replaces it. Recognised, erring on the side of privacy:
 *   IPv4 `192.0.2.1` (also inside longer dotted runs such as `1.2.3.4.in-addr.arpa` reversed or not),
 *   IPv4 with dashes or underscores as in reverse-DNS names (`192-0-2-1.dsl.example.net`, `ip-10-1-2-3`),
 *   IPv6 full, compressed, with an embedded IPv4 tail, IPv4-mapped (`::ffff:192.0.2.1`), in brackets, with a
 *   zone (`fe80::1%eth0`, the zone kept), and with dashes as in `2001-db8--1.ipv6-literal.net`.
 * A port after an address is left alone (`[2001:db8::1]:443`, `192.0.2.1:8080`). A native regular expression
 * finds the few places where an address can start (SIGNATURE); an exact character scanner decides there,
 * allocating only for what it rewrites. The hot path of `auditline anonymize` and the stream stage (#4).
 */
import { parseIPv6, formatIPv4, formatIPv6, isV4Mapped } from './ip.ts'

export interface IpMapper {
  v4 (addr: Uint8Array): Uint8Array
  v6 (addr: Uint8Array): Uint8Array
  /**
   * Optional fast path for the most common case: `formatIPv4(v4([a, b, c, d]))`, e.g. from a cache of
   * the text itself (saves an allocation and a number formatting per address of every line).
   */
  v4Dotted? (a: number, b: number, c: number, d: number): string
  /**
   * Optional memo of IPv6 rewrites by the run of address characters they were found in (the match and
   * its replacement depend on that run alone): skips parsing and formatting for an address seen before.
   * The mapper owns it, bounds it and drops it with its key.
   */
  recall? (run: string): Rewritten | undefined
  remember? (run: string, r: Rewritten): void
}

/** A rewritten address: how many characters of its run it replaced, and by what. */
export interface Rewritten { readonly length: number, readonly text: string }

// Character classes of the 7-bit range in one table: one load per character instead of a chain of
// comparisons in the loop every byte of every line goes through (issue #4: beat rsyslog's mmanon).
const DIGIT = 1
const HEX = 2
const ALNUM = 4
const CLS = new Uint8Array(128)
for (let c = 48; c <= 57; c++) CLS[c] = DIGIT | HEX | ALNUM
for (let c = 97; c <= 122; c++) CLS[c] = c <= 102 ? HEX | ALNUM : ALNUM
for (let c = 65; c <= 90; c++) CLS[c] = c <= 70 ? HEX | ALNUM : ALNUM
const cls = (c: number): number => c >= 0 && c < 128 ? CLS[c] as number : 0

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isHex = (c: number): boolean => (cls(c) & HEX) !== 0

/** Quick reject: a string with neither a digit nor a colon holds no address (`abcd::ef` has no digit). */
function mayHoldIp (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isDigit(c) || c === 58) return true
  }
  return false
}

/**
 * What every address the matchers below accept contains, starting at most 4 characters after the address
 * does: IPv4 — the last digit of its first octet, a separator, the second octet, a separator, a digit;
 * IPv6 — from its first colon (or dash) on, the groups up to its `::`, or five more groups when it has no
 * `::` (then it has eight groups, or six and an IPv4 tail). A native regular expression finds these far
 * faster than a JavaScript loop looks at each character, so the exact character scanner runs only from 4
 * characters before each of them; a timestamp's `2026:00:00:00` or a UUID has none.
 */
const SIGNATURE = /\d[-._]\d{1,3}[-._]\d|:(?:[0-9A-Fa-f]{1,4}:){0,6}:|:(?:[0-9A-Fa-f]{1,4}:){5}|-(?:[0-9A-Fa-f]{1,4}-){0,6}-|-(?:[0-9A-Fa-f]{1,4}-){5}/g

export function rewriteIps (text: string, map: IpMapper): string {
  if (!mayHoldIp(text)) return text
  let out = ''
  let found = false
  let last = 0
  const n = text.length
  let i = 0
  while (i < n) {
    // No signature from i on: no address starts at or after i. Otherwise none starts before it - 4.
    SIGNATURE.lastIndex = i
    const sig = SIGNATURE.exec(text)
    if (sig === null) break
    const stop = SIGNATURE.lastIndex
    if (sig.index - 4 > i) i = sig.index - 4
    let prev = i === 0 ? -1 : text.charCodeAt(i - 1)
    let prevCls = cls(prev)
    while (i < stop) {
      const c = text.charCodeAt(i)
      const k = cls(c)
      if ((k & DIGIT) !== 0 && (prevCls & DIGIT) === 0 && prev !== 58) {
        // (An address right after `:` is the tail of an IPv6 one, `::ffff:1.2.3.4`: left to the IPv6 matcher.)
        const end = matchV4(text, i)
        if (end > 0) {
          const repl = v4sep === '.' && map.v4Dotted !== undefined ? map.v4Dotted(v4a, v4b, v4c, v4d) : formatIPv4(map.v4(new Uint8Array([v4a, v4b, v4c, v4d])), v4sep)
          out += text.slice(last, i) + repl
          found = true
          last = i = end
          prev = text.charCodeAt(i - 1)
          prevCls = cls(prev)
          continue
        }
      }
      if (((k & HEX) !== 0 || c === 58) && (prevCls & ALNUM) === 0 && prev !== 58 && prev !== 46) {
        const m = matchV6(text, i, map)
        if (m !== undefined) {
          out += text.slice(last, i) + m.text
          found = true
          last = i = i + m.length
          prev = text.charCodeAt(i - 1)
          prevCls = cls(prev)
          continue
        }
      }
      prev = c
      prevCls = k
      i++
    }
  }
  return found ? out + text.slice(last) : text
}

// The last IPv4 match, in scalars: matchV4 runs at every run of digits (times, sizes, versions) and
// must not allocate for the many that are not addresses.
let v4a = 0
let v4b = 0
let v4c = 0
let v4d = 0
let v4sep = '.'

/**
 * Four octets joined by one separator (`.`, `-` or `_`), not followed by another digit. Returns the end
 * index (the octets in v4a..v4d, the separator in v4sep), or -1.
 */
function matchV4 (s: string, i: number): number {
  const n = s.length
  let sep = -1
  let j = i
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      const d = s.charCodeAt(j)
      if (sep === -1) {
        if (d !== 46 && d !== 45 && d !== 95) return -1
        sep = d
      } else if (d !== sep) return -1
      j++
    }
    let val = 0
    let digits = 0
    let d = s.charCodeAt(j)
    while (j < n && d >= 48 && d <= 57 && digits < 4) { val = val * 10 + d - 48; j++; digits++; d = s.charCodeAt(j) }
    if (digits === 0 || digits > 3 || val > 255) return -1
    if (part === 0) v4a = val
    else if (part === 1) v4b = val
    else if (part === 2) v4c = val
    else v4d = val
  }
  if (j < n && isDigit(s.charCodeAt(j))) return -1
  v4sep = sep === 46 ? '.' : sep === 45 ? '-' : '_'
  return j
}

interface V6Match { end: number, render: (map: IpMapper) => string }

function matchV6 (s: string, i: number, map: IpMapper): Rewritten | undefined {
  let j = i
  let colons = 0
  let dashes = 0
  // Colons before the first dash, and whether `::` is among them: v6Colon reads only that part.
  let colonsBeforeDash = 0
  let gap = false
  while (j < s.length) {
    const c = s.charCodeAt(j)
    if (c === 58) {
      colons++
      if (dashes === 0) {
        colonsBeforeDash++
        if (s.charCodeAt(j - 1) === 58 && j > i) gap = true
      }
    } else if (c === 45) dashes++
    else if (!(isHex(c) || c === 46)) break
    j++
  }
  let m: V6Match | undefined
  if (colons >= 2) {
    // Cheap reject of what parseIPv6 would refuse anyway (`2026:00:00:00` in every timestamp): without
    // `::` an address has 8 words (7 colons) or 6 words and an IPv4 tail (6 colons).
    if (!gap && colonsBeforeDash < 6) return undefined
    if (map.recall !== undefined) {
      const run = s.slice(i, j)
      const hit = map.recall(run)
      if (hit !== undefined) return hit
      m = v6Colon(s, i, j)
      if (m === undefined) return undefined
      const r: Rewritten = { length: m.end - i, text: m.render(map) }
      map.remember?.(run, r)
      return r
    }
    m = v6Colon(s, i, j)
  } else if (dashes >= 2 && colons === 0) {
    m = v6Dash(s, i, j)
  }
  return m === undefined ? undefined : { length: m.end - i, text: m.render(map) }
}

function v6Colon (s: string, i: number, runEnd: number): V6Match | undefined {
  // The run may carry a trailing `:port` only in the bracketed form; trim trailing dots/dashes of prose.
  let end = runEnd
  let text = s.slice(i, end)
  const dash = text.indexOf('-')
  if (dash >= 0) text = text.slice(0, dash)
  end = i + text.length
  while (text.length > 2 && (text.endsWith('.') || (text.endsWith(':') && !text.endsWith('::')))) { text = text.slice(0, -1); end-- }
  let addr = parseIPv6(text)
  if (addr === undefined) {
    // `2001:db8::1.` or a dotted tail that is not IPv4: try without the trailing dotted part.
    const cut = text.lastIndexOf(':')
    if (cut > 0 && text.slice(cut + 1).includes('.')) {
      text = text.slice(0, cut + 1)
      addr = parseIPv6(text.endsWith('::') ? text : text.slice(0, -1))
      if (addr !== undefined) end = i + (text.endsWith('::') ? text.length : text.length - 1)
    }
  }
  if (addr === undefined) return undefined
  const got = addr
  const dotted = text.includes('.')
  // A zone id (`%eth0`, `%25eth0` in URLs) names an interface, not a person: kept as it is.
  return {
    end,
    render: map => {
      if (isV4Mapped(got)) {
        const v4 = map.v4(got.subarray(12, 16))
        return dotted ? `::ffff:${formatIPv4(v4)}` : formatIPv6(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]))
      }
      return formatIPv6(map.v6(got))
    }
  }
}

/** ipv6-literal style: `2001-db8--1` (dashes for colons). */
function v6Dash (s: string, i: number, runEnd: number): V6Match | undefined {
  let text = s.slice(i, runEnd)
  if (text.includes('.')) text = text.slice(0, text.indexOf('.'))
  const addr = parseIPv6(text.replaceAll('-', ':'))
  if (addr === undefined) return undefined
  const end = i + text.length
  return { end, render: map => formatIPv6(map.v6(addr)).replaceAll(':', '-') }
}
