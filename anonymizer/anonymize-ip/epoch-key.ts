/**
 * The epoch key: 32 random bytes drawn from the CSPRNG when an epoch starts, held only in this object,
 * never logged, persisted or sent. When the epoch (plus a short grace for late records) ends, the key
 * buffer is overwritten with zeros and dropped together with every cache built from it. After that no
 * one — the operator included — can recompute the mapping, so no output can be mapped back.
 */
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'

export interface EpochKeyOptions {
  /** Epoch length in ms (default one UTC day). Epochs are aligned to multiples of this since 1970 UTC. */
  epochMs: number
  /** How long after its end an epoch's key still serves late records. */
  graceMs: number
}

export class EpochKey {
  readonly epoch: number
  readonly start: number
  readonly end: number
  #key: Buffer | undefined

  constructor (epoch: number, epochMs: number) {
    this.epoch = epoch
    this.start = epoch * epochMs
    this.end = this.start + epochMs
    this.#key = randomBytes(32)
  }

  /** The key bytes; throws once destroyed (a destroyed epoch must never be served again). */
  get bytes (): Buffer {
    if (this.#key === undefined) throw new Error(`epoch ${this.epoch} key destroyed`)
    return this.#key
  }

  get destroyed (): boolean { return this.#key === undefined }

  destroy (): void {
    this.#key?.fill(0)
    this.#key = undefined
  }

  // Neither console.log, util.inspect nor JSON.stringify may ever show the key.
  toJSON (): unknown { return { epoch: this.epoch, start: new Date(this.start).toISOString() } }
  [inspect.custom] (): string { return `EpochKey(${this.epoch})` }
}

/**
 * Holds the keys of the current epoch and of the previous one during its grace period. A record is
 * served by the epoch its timestamp falls in; a record older than the grace window is refused (the caller
 * dead-letters it without its raw content, see anonymizer docs) rather than served by a resurrected key.
 */
export class EpochKeyRing {
  readonly #opts: EpochKeyOptions
  readonly #keys = new Map<number, EpochKey>()
  readonly #onDestroy: Array<(epoch: number) => void> = []

  constructor (opts: EpochKeyOptions) {
    this.#opts = opts
  }

  /** Registers a hook that drops caches built from a key when it is destroyed. */
  onDestroy (fn: (epoch: number) => void): void { this.#onDestroy.push(fn) }

  /** The key for a record time, creating it on first use; undefined when that epoch is over (or too far ahead). */
  keyFor (recordTime: number, now: number = Date.now()): EpochKey | undefined {
    this.expire(now)
    const epoch = Math.floor(recordTime / this.#opts.epochMs)
    const existing = this.#keys.get(epoch)
    if (existing !== undefined) return existing
    // A destroyed epoch stays destroyed; an epoch past its grace never gets a key; clock skew allows one ahead.
    if (this.#destroyed.has(epoch)) return undefined
    if (now >= (epoch + 1) * this.#opts.epochMs + this.#opts.graceMs) return undefined
    if (epoch > Math.floor(now / this.#opts.epochMs) + 1) return undefined
    const k = new EpochKey(epoch, this.#opts.epochMs)
    this.#keys.set(epoch, k)
    return k
  }

  readonly #destroyed = new Set<number>()

  /** Destroys every key whose epoch ended more than the grace period ago. */
  expire (now: number = Date.now()): void {
    for (const [epoch, k] of this.#keys) {
      if (now >= k.end + this.#opts.graceMs) {
        k.destroy()
        this.#keys.delete(epoch)
        this.#destroyed.add(epoch)
        for (const fn of this.#onDestroy) fn(epoch)
      }
    }
  }

  /** Destroys every key now (shutdown). */
  destroyAll (): void {
    for (const [epoch, k] of this.#keys) {
      k.destroy()
      this.#destroyed.add(epoch)
      for (const fn of this.#onDestroy) fn(epoch)
    }
    this.#keys.clear()
  }

  get liveEpochs (): number[] { return [...this.#keys.keys()] }
}
