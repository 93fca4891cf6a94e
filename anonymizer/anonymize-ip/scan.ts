/**
 * Finds every IP address in a string and replaces it. Recognised, erring on the side of privacy:
 *   IPv4 `192.0.2.1` (also inside longer dotted runs such as `1.2.3.4.in-addr.arpa` reversed or not),
 *   IPv4 with dashes or underscores as in reverse-DNS names (`192-0-2-1.dsl.example.net`, `ip-10-1-2-3`),
 *   IPv6 full, compressed, with an embedded IPv4 tail, IPv4-mapped (`::ffff:192.0.2.1`), in brackets, with a
 *   zone (`fe80::1%eth0`, the zone kept), and with dashes as in `2001-db8--1.ipv6-literal.net`.
 * A port after an address is left alone (`[2001:db8::1]:443`, `192.0.2.1:8080`). A character scanner, not a
 * regular expression: it runs once over the string and allocates only when it finds something.
 */
import { parseIPv6, formatIPv4, formatIPv6, isV4Mapped } from './ip.ts'

export interface IpMapper {
  v4 (addr: Uint8Array): Uint8Array
  v6 (addr: Uint8Array): Uint8Array
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70)
const isAlnum = (c: number): boolean => isHex(c) || (c >= 103 && c <= 122) || (c >= 71 && c <= 90)

/** Quick reject: a string with neither a digit nor a colon holds no address (`abcd::ef` has no digit). */
function mayHoldIp (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (isDigit(c) || c === 58) return true
  }
  return false
}

export function rewriteIps (text: string, map: IpMapper): string {
  if (!mayHoldIp(text)) return text
  let out: string[] | undefined
  let last = 0
  const n = text.length
  for (let i = 0; i < n;) {
    const c = text.charCodeAt(i)
    const prev = i === 0 ? -1 : text.charCodeAt(i - 1)
    if (isDigit(c) && !isDigit(prev)) {
      const m = matchV4(text, i)
      if (m !== undefined && !startsV6(text, i)) {
        out ??= []
        out.push(text.slice(last, i), formatIPv4(map.v4(m.addr), m.sep))
        last = i = m.end
        continue
      }
    }
    if ((isHex(c) || c === 58) && !(isAlnum(prev) || prev === 58 || prev === 46)) {
      const m = matchV6(text, i)
      if (m !== undefined) {
        out ??= []
        out.push(text.slice(last, i), m.render(map))
        last = i = m.end
        continue
      }
    }
    i++
  }
  if (out === undefined) return text
  out.push(text.slice(last))
  return out.join('')
}

/** Four octets joined by one separator (`.`, `-` or `_`), not followed by another digit. */
function matchV4 (s: string, i: number): { addr: Uint8Array, end: number, sep: string } | undefined {
  const addr = new Uint8Array(4)
  let sep = -1
  let j = i
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      const d = s.charCodeAt(j)
      if (sep === -1) {
        if (d !== 46 && d !== 45 && d !== 95) return undefined
        sep = d
      } else if (d !== sep) return undefined
      j++
    }
    let val = 0
    let digits = 0
    while (j < s.length && isDigit(s.charCodeAt(j)) && digits < 4) { val = val * 10 + s.charCodeAt(j) - 48; j++; digits++ }
    if (digits === 0 || digits > 3 || val > 255) return undefined
    addr[part] = val
  }
  if (j < s.length && isDigit(s.charCodeAt(j))) return undefined
  return { addr, end: j, sep: String.fromCharCode(sep) }
}

/** `1.2.3.4` that is really the tail of an IPv6 address (`::ffff:1.2.3.4`) is left to matchV6. */
function startsV6 (s: string, i: number): boolean {
  return i > 0 && s.charCodeAt(i - 1) === 58
}

interface V6Match { end: number, render: (map: IpMapper) => string }

function matchV6 (s: string, i: number): V6Match | undefined {
  let j = i
  let colons = 0
  let dashes = 0
  while (j < s.length) {
    const c = s.charCodeAt(j)
    if (c === 58) colons++
    else if (c === 45) dashes++
    else if (!(isHex(c) || c === 46)) break
    j++
  }
  if (colons >= 2) return v6Colon(s, i, j)
  if (dashes >= 2 && colons === 0) return v6Dash(s, i, j)
  return undefined
}

function v6Colon (s: string, i: number, runEnd: number): V6Match | undefined {
  // The run may carry a trailing `:port` only in the bracketed form; trim trailing dots/dashes of prose.
  let end = runEnd
  let text = s.slice(i, end).replace(/-.*$/, '')
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
