/**
 * The keyed mapping: an address → a pseudo-random address of the same family, computed as HMAC-SHA-256 of
 * the address bytes under the epoch key (node:crypto). Consistent within an epoch, unrelated across epochs,
 * and unrecoverable once the key is destroyed. Results are cached per epoch (the cache is dropped with the key).
 */
import { createHmac } from 'node:crypto'
import type { EpochKey } from './epoch-key.ts'
import type { IpMapper } from './scan.ts'

export class EpochMapper implements IpMapper {
  readonly #key: EpochKey
  readonly #cache = new Map<string, Uint8Array>()
  readonly #maxCache: number

  constructor (key: EpochKey, maxCache = 1_000_000) {
    this.#key = key
    this.#maxCache = maxCache
  }

  get epoch (): number { return this.#key.epoch }

  v4 (addr: Uint8Array): Uint8Array {
    return this.#map(addr, 4)
  }

  v6 (addr: Uint8Array): Uint8Array {
    return this.#map(addr, 16)
  }

  /** A keyed hash of arbitrary inputs under the same epoch key (per-epoch visitor ids). */
  digest (...parts: string[]): Buffer {
    const h = createHmac('sha256', this.#key.bytes).update('visitor\u0000')
    for (const p of parts) h.update(p).update('\u0000')
    return h.digest()
  }

  #map (addr: Uint8Array, len: 4 | 16): Uint8Array {
    const k = Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString('latin1')
    const hit = this.#cache.get(k)
    if (hit !== undefined) return hit
    // Domain separation: an IPv4 address and the IPv6 address with the same leading bytes never share output.
    const out = createHmac('sha256', this.#key.bytes).update(len === 4 ? 'ipv4\u0000' : 'ipv6\u0000').update(addr).digest().subarray(0, len)
    const res = new Uint8Array(out)
    if (this.#cache.size >= this.#maxCache) this.#cache.clear()
    this.#cache.set(k, res)
    return res
  }

  /** Drops every cached mapping (called when the key is destroyed). */
  clear (): void { this.#cache.clear() }
}
