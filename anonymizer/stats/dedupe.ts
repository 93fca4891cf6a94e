/**
 * Recognises an anonymized record that reaches the statistics stage twice. The anonymizer delivers at least
 * once: after a crash, or when its group coordinator moves, the successor re-reads the raw batch whose offsets
 * were not committed and produces those records again — same record id (it comes from the collector), same
 * site, so the same `web.access.anon.v1` partition, a little further on. Counting them again would inflate
 * hits and pageviews. Pure and bounded: per partition, the ids of the last `capacity` records.
 */
export class RecentIds {
  readonly #set = new Set<string>()
  readonly #ring: Array<string | undefined>
  #next = 0

  constructor (readonly capacity: number) {
    this.#ring = new Array<string | undefined>(capacity)
  }

  /** True when `id` is among the last `capacity` ids remembered; otherwise remembers it (forgetting the oldest). */
  seen (id: string): boolean {
    if (this.capacity === 0) return false
    if (this.#set.has(id)) return true
    const old = this.#ring[this.#next]
    if (old !== undefined) this.#set.delete(old)
    this.#ring[this.#next] = id
    this.#next = (this.#next + 1) % this.capacity
    this.#set.add(id)
    return false
  }

  get size (): number { return this.#set.size }
}
