/**
 * The keyed mapping: an address → a pseudo-random address of the same family, computed as HMAC-SHA-256 of
 * the address bytes under the epoch key (node:crypto). Consistent within an epoch, unrelated across epochs,
 * and unrecoverable once the key is destroyed. Results are cached per epoch (the cache is dropped with the key).
 */
import { createHmac } from 'node:crypto'
import type { EpochKey } from './epoch-key.ts'
import type { IpMapper, Rewritten } from './scan.ts'
import { formatIPv4 } from './ip.ts'

const DOTTED_INITIAL = 1 << 12

export class EpochMapper implements IpMapper {
  readonly #key: EpochKey
  // Keyed by the address itself as a number (IPv4) or an 8-character string of its 16-bit words (IPv6):
  // no Buffer and no string decoding per lookup, which cost more than the scan of the whole line.
  readonly #cache4 = new Map<number, Uint8Array>()
  readonly #cache6 = new Map<string, Uint8Array>()
  // IPv4 → mapped dotted text, open addressing in flat arrays: the lookup every line pays. A Map of tens of
  // thousands of entries costs several cache misses per lookup, this one about one.
  #dkeys = new Int32Array(DOTTED_INITIAL)
  #dvals = new Array<string | undefined>(DOTTED_INITIAL).fill(undefined)
  #dsize = 0
  // IPv6 run as found in the text → its rewrite (see IpMapper.recall).
  readonly #runs = new Map<string, Rewritten>()
  // Visitor ids by their inputs (client address, user agent, site): a visitor's requests repeat them, and one
  // HMAC per record was the largest single cost of the anonymizer stage.
  readonly #digests = new Map<string, Buffer>()
  readonly #maxCache: number

  constructor (key: EpochKey, maxCache = 1_000_000) {
    this.#key = key
    this.#maxCache = maxCache
  }

  get epoch (): number { return this.#key.epoch }

  v4 (addr: Uint8Array): Uint8Array {
    // `| 0`: a signed 32-bit key stays a small integer; `>>> 0` would box half of all addresses.
    const k = ((addr[0] as number) << 24) | ((addr[1] as number) << 16) | ((addr[2] as number) << 8) | (addr[3] as number)
    const hit = this.#cache4.get(k)
    if (hit !== undefined) return hit
    const res = this.#hmac(addr, 4)
    this.#bound()
    this.#cache4.set(k, res)
    return res
  }

  v4Dotted (a: number, b: number, c: number, d: number): string {
    const k = (a << 24) | (b << 16) | (c << 8) | d
    const keys = this.#dkeys
    const vals = this.#dvals
    const mask = keys.length - 1
    let h = Math.imul(k, 0x9E3779B1)
    h = (h ^ (h >>> 15)) & mask
    for (let v = vals[h]; v !== undefined; v = vals[h]) {
      if (keys[h] === k) return v
      h = (h + 1) & mask
    }
    const res = formatIPv4(this.v4(new Uint8Array([a, b, c, d])))
    this.#bound()
    if ((this.#dsize + 1) * 2 > this.#dkeys.length) {
      // Half full at most, so that a probe ends after a slot or two.
      const oldKeys = this.#dkeys
      const oldVals = this.#dvals
      this.#dkeys = new Int32Array(oldKeys.length * 2)
      this.#dvals = new Array<string | undefined>(oldKeys.length * 2).fill(undefined)
      for (let i = 0; i < oldKeys.length; i++) {
        const v = oldVals[i]
        if (v !== undefined) this.#insert(oldKeys[i] as number, v)
      }
      oldKeys.fill(0)
    }
    this.#insert(k, res)
    this.#dsize++
    return res
  }

  #insert (k: number, v: string): void {
    const keys = this.#dkeys
    const vals = this.#dvals
    const mask = keys.length - 1
    let h = Math.imul(k, 0x9E3779B1)
    h = (h ^ (h >>> 15)) & mask
    while (vals[h] !== undefined) h = (h + 1) & mask
    keys[h] = k
    vals[h] = v
  }

  v6 (addr: Uint8Array): Uint8Array {
    let k = ''
    for (let i = 0; i < 16; i += 2) k += String.fromCharCode(((addr[i] as number) << 8) | (addr[i + 1] as number))
    const hit = this.#cache6.get(k)
    if (hit !== undefined) return hit
    const res = this.#hmac(addr, 16)
    this.#bound()
    this.#cache6.set(k, res)
    return res
  }

  recall (run: string): Rewritten | undefined {
    return this.#runs.get(run)
  }

  remember (run: string, r: Rewritten): void {
    this.#bound()
    // A copy: `run` may be a slice that keeps the whole input chunk (visitor addresses) alive with the cache.
    this.#runs.set(Buffer.from(run, 'latin1').toString('latin1'), r)
  }

  /** A keyed hash of arbitrary inputs under the same epoch key (per-epoch visitor ids). */
  digest (...parts: string[]): Buffer {
    const k = parts.join('\u0000')
    const hit = this.#digests.get(k)
    if (hit !== undefined) return hit
    const h = createHmac('sha256', this.#key.bytes).update('visitor\u0000')
    for (const p of parts) h.update(p).update('\u0000')
    const res = h.digest()
    this.#bound()
    this.#digests.set(k, res)
    return res
  }

  #hmac (addr: Uint8Array, len: 4 | 16): Uint8Array {
    // Domain separation: an IPv4 address and the IPv6 address with the same leading bytes never share output.
    // `bytes` throws once the key is destroyed, so a cache miss can never be served by a dead key.
    const out = createHmac('sha256', this.#key.bytes).update(len === 4 ? 'ipv4\u0000' : 'ipv6\u0000').update(addr).digest().subarray(0, len)
    return new Uint8Array(out)
  }

  /** Keeps the caches within maxCache entries together (a flood of distinct addresses cannot grow them). */
  #bound (): void {
    if (this.#cache4.size + this.#cache6.size + this.#dsize + this.#runs.size + this.#digests.size >= this.#maxCache) this.clear()
  }

  /** Drops every cached mapping (called when the key is destroyed). */
  clear (): void {
    this.#cache4.clear()
    this.#cache6.clear()
    // The keys are visitor addresses: overwritten, not just dropped (Map keys cannot be).
    this.#dkeys.fill(0)
    this.#dkeys = new Int32Array(DOTTED_INITIAL)
    this.#dvals = new Array<string | undefined>(DOTTED_INITIAL).fill(undefined)
    this.#dsize = 0
    this.#runs.clear()
    this.#digests.clear()
  }
}
