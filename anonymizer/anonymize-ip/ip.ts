/**
 * Address parsing and formatting without allocations beyond the result: IPv4 dotted quads and IPv6 in
 * every textual form (full, compressed, with an embedded IPv4 tail), to 4/16 bytes and back (RFC 5952).
 */

/** Parses a dotted quad; undefined unless exactly four decimal octets ≤ 255. */
export function parseIPv4 (s: string): Uint8Array | undefined {
  const out = new Uint8Array(4)
  let part = 0
  let val = 0
  let digits = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      val = val * 10 + (c - 48)
      if (++digits > 3 || val > 255) return undefined
    } else if (c === 46 && digits > 0 && part < 3) {
      out[part++] = val
      val = 0
      digits = 0
    } else {
      return undefined
    }
  }
  if (part !== 3 || digits === 0) return undefined
  out[3] = val
  return out
}

/** Parses an IPv6 address (no brackets, no zone) to 16 bytes. */
export function parseIPv6 (s: string): Uint8Array | undefined {
  if (s.length < 2 || s.length > 45) return undefined
  const words: number[] = []
  let gap = -1
  let i = 0
  if (s.startsWith('::')) { gap = 0; i = 2; if (s.length === 2) return expand(words, gap) } else if (s.charCodeAt(0) === 58) return undefined
  while (i < s.length) {
    // An embedded IPv4 tail takes the last 32 bits.
    const colon = s.indexOf(':', i)
    const segEnd = colon === -1 ? s.length : colon
    if (s.lastIndexOf('.', segEnd - 1) >= i) {
      if (segEnd !== s.length) return undefined
      const v4 = parseIPv4(s.slice(i))
      if (v4 === undefined) return undefined
      words.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number))
      i = s.length
      break
    }
    let val = 0
    let n = 0
    while (i < s.length && n < 5) {
      const h = hex(s.charCodeAt(i))
      if (h < 0) break
      val = (val << 4) | h
      n++
      i++
    }
    if (n === 0 || n > 4) return undefined
    words.push(val)
    if (i === s.length) break
    if (s.charCodeAt(i) !== 58) return undefined
    i++
    if (i < s.length && s.charCodeAt(i) === 58) {
      if (gap >= 0) return undefined
      gap = words.length
      i++
      if (i === s.length) break
    } else if (i === s.length) {
      return undefined
    }
  }
  return expand(words, gap)
}

function expand (words: number[], gap: number): Uint8Array | undefined {
  if (gap < 0 ? words.length !== 8 : words.length > 7) return undefined
  const full = gap < 0 ? words : [...words.slice(0, gap), ...new Array<number>(8 - words.length).fill(0), ...words.slice(gap)]
  const out = new Uint8Array(16)
  for (let w = 0; w < 8; w++) {
    out[w * 2] = (full[w] as number) >> 8
    out[w * 2 + 1] = (full[w] as number) & 0xff
  }
  return out
}

function hex (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

export function formatIPv4 (b: Uint8Array, sep = '.'): string {
  return `${b[0] as number}${sep}${b[1] as number}${sep}${b[2] as number}${sep}${b[3] as number}`
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (≥ 2) of zero words as `::`. */
export function formatIPv6 (b: Uint8Array): string {
  const w: number[] = []
  for (let i = 0; i < 8; i++) w.push(((b[i * 2] as number) << 8) | (b[i * 2 + 1] as number))
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  if (bestStart < 0) return w.map(x => x.toString(16)).join(':')
  const head = w.slice(0, bestStart).map(x => x.toString(16)).join(':')
  const tail = w.slice(bestStart + bestLen).map(x => x.toString(16)).join(':')
  return `${head}::${tail}`
}

/** True for ::ffff:a.b.c.d (IPv4-mapped) addresses. */
export function isV4Mapped (b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}
