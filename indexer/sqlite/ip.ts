/**
 * IP addresses of the embedded store (#7) as 16-byte BLOBs, so that a CIDR block is one byte range
 * (`source_ip BETWEEN lo AND hi`): IPv6 as its 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), the
 * way Elasticsearch's `ip` field stores them. `1.2.3.4` and `::ffff:1.2.3.4` are therefore the same address,
 * and an IPv4 block `/n` is the IPv6 block `/96+n`. The write side (indexer/sqlite/store.ts) and the read side
 * (query-api/store/sqlite.ts) use these functions alone, so that both agree on every byte.
 */
import { isIPv4, isIPv6 } from 'node:net'

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]

function v4Octets (text: string): number[] | undefined {
  return isIPv4(text) ? text.split('.').map(Number) : undefined
}

/** The 16 bytes of a valid IPv6 text (`node:net` checked it); a zone id (`%eth0`) names no other address. */
function v6Bytes (text: string): Buffer {
  const address = text.split('%')[0] as string
  const groups = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const g of part.split(':')) {
      const v4 = v4Octets(g)
      if (v4 === undefined) out.push(parseInt(g, 16))
      else out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number))
    }
    return out
  }
  const gap = address.indexOf('::')
  const head = groups(gap < 0 ? address : address.slice(0, gap))
  const tail = gap < 0 ? [] : groups(address.slice(gap + 2))
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  const buf = Buffer.alloc(16)
  all.forEach((g, i) => buf.writeUInt16BE(g, i * 2))
  return buf
}

/** `text` as 16 bytes (IPv4 as `::ffff:a.b.c.d`); undefined when it is not an IPv4 or IPv6 address. */
export function ipBytes (text: string): Buffer | undefined {
  const v4 = v4Octets(text)
  if (v4 !== undefined) return Buffer.from([...MAPPED_PREFIX, ...v4])
  return isIPv6(text) ? v6Bytes(text) : undefined
}

/**
 * The byte range (inclusive) of an address or CIDR block: `10.0.0.0/8`, `2001:db8::/32`, a bare address is
 * a /32 or /128. Host bits after the prefix are ignored (`10.1.2.3/8` = `10.0.0.0/8`), as Elasticsearch does.
 * Undefined when `text` is neither.
 */
export function cidrRange (text: string): { lo: Buffer, hi: Buffer } | undefined {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const bytes = ipBytes(address)
  if (bytes === undefined) return undefined
  const max = isIPv4(address) ? 32 : 128
  let prefix = max
  if (slash >= 0) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined
    prefix = Number(p)
  }
  const bits = prefix + (128 - max)
  const lo = Buffer.from(bytes)
  const hi = Buffer.from(bytes)
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8))
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff
    lo[i] = (bytes[i] as number) & mask
    hi[i] = ((bytes[i] as number) & mask) | (~mask & 0xff)
  }
  return { lo, hi }
}
