/**
 * Gap-free sequence numbers for streams that are not files (the panel intake per client, the query API's own
 * audit events), across retries and restarts.
 *
 * A file collector derives its sequence from a durable checkpoint that moves after Kafka's
 * acknowledgement; an HTTP intake cannot wait like that, because the next request may arrive before the
 * previous one is acknowledged, and a request that failed may come back (as a retry) or never. So the
 * number is *reserved* per client event id (the idempotency key) in an append-only journal, fsync'ed
 * before the event is produced:
 *
 * - a retry of the same id (after a 503, a timeout, or a crash of either side) gets the same number,
 *   so the event it produces is byte-identical (same `event.id`, same `event.hash`) and overwrites;
 * - a restart re-reads the journal, so numbers are never handed out twice;
 * - a number is never taken back after a failed send: Kafka may have written the message although the
 *   acknowledgement was lost, and a second event under the same number would be indistinguishable from
 *   tampering. A number that stays unused is a real gap: an event the panel offered and never delivered
 *   (the panel is told 503 and must retry), which is exactly what gap detection should report.
 *
 * Journal lines: `{"k":"<client event id>","s":<sequence>,"f":"<content fingerprint>"}`. The file is
 * compacted to the last `window` entries once it holds twice as many.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { AuditError } from './errors.ts'
import { writeFileAtomic } from './atomic-file.ts'

interface Entry { s: number, f: string }

export interface Reservation {
  /** Sequence number per requested item, in request order. */
  sequences: number[]
  /** How many items got a number they already had (retries). */
  reused: number
}

export class SequenceJournal {
  private readonly keys = new Map<string, Entry>()
  private next = 0
  private lines = 0
  private fh: FileHandle | undefined
  /** A failed append may have left a partial line: rewrite the file from memory before the next append. */
  private damaged = false
  /** Reservations run one after the other: numbers are handed out and persisted in order. */
  private queue: Promise<unknown> = Promise.resolve()

  private constructor (readonly file: string, private readonly window: number) {}

  /** Opens (or creates) `<dir>/<clientId>.seq.jsonl` and replays it. Throws AUD_ERR_SEQUENCE_STATE. */
  static async open (dir: string, clientId: string, window: number): Promise<SequenceJournal> {
    const j = new SequenceJournal(join(dir, `${clientId}.seq.jsonl`), window)
    await j.load(dir)
    return j
  }

  /** The number the next new id will get. */
  get nextSequence (): number { return this.next }

  /**
   * Reserves numbers for `items` (all or none). An id seen before gets its old number when the
   * fingerprint matches; when it does not, nothing is reserved and the indexes of the conflicting
   * items are returned. Resolves only after the journal is on disk.
   */
  reserve (items: ReadonlyArray<{ key: string, fingerprint: string }>): Promise<Reservation | { conflicts: number[] }> {
    const run = this.queue.then(() => this.reserveNow(items))
    this.queue = run.catch(() => {})
    return run
  }

  async close (): Promise<void> {
    await this.queue
    await this.fh?.close()
    this.fh = undefined
  }

  private async reserveNow (items: ReadonlyArray<{ key: string, fingerprint: string }>): Promise<Reservation | { conflicts: number[] }> {
    const pending = new Map<string, Entry>()
    const sequences: number[] = []
    const conflicts: number[] = []
    let next = this.next
    let reused = 0
    items.forEach((it, i) => {
      const known = pending.get(it.key) ?? this.keys.get(it.key)
      if (known !== undefined) {
        if (known.f !== it.fingerprint) conflicts.push(i)
        else reused++
        sequences.push(known.s)
        return
      }
      const e = { s: next++, f: it.fingerprint }
      pending.set(it.key, e)
      sequences.push(e.s)
    })
    if (conflicts.length > 0) return { conflicts }
    if (pending.size > 0) {
      const text = [...pending].map(([k, e]) => JSON.stringify({ k, s: e.s, f: e.f }) + '\n').join('')
      if (this.damaged) {
        await this.compact()
        this.damaged = false
      }
      await this.append(text)
      for (const [k, e] of pending) this.remember(k, e)
      this.next = next
      this.lines += pending.size
      if (this.lines > 2 * this.window) await this.compact()
    }
    return { sequences, reused }
  }

  private remember (key: string, e: Entry): void {
    this.keys.delete(key)
    this.keys.set(key, e)
    if (this.keys.size > this.window) {
      const oldest = this.keys.keys().next().value
      if (oldest !== undefined) this.keys.delete(oldest)
    }
  }

  private async load (dir: string): Promise<void> {
    let text = ''
    try {
      await mkdir(dir, { recursive: true })
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.stateError(err)
    }
    const lines = text.split('\n')
    // The last element is '' after a complete final line; anything else there is a write torn by a crash.
    // Its reservation was never confirmed to anyone (the event is produced only after the fsync), so
    // dropping it is safe; the rewrite below removes it from the file.
    const torn = lines.pop() !== ''
    lines.forEach((line, i) => {
      let e: { k?: unknown, s?: unknown, f?: unknown }
      try { e = JSON.parse(line) as typeof e } catch { e = {} }
      if (typeof e.k !== 'string' || typeof e.s !== 'number' || !Number.isSafeInteger(e.s) || typeof e.f !== 'string') {
        throw this.stateError(`line ${i + 1} is not a journal entry; refusing to guess the stream's sequence`)
      }
      this.remember(e.k, { s: e.s, f: e.f })
      this.next = Math.max(this.next, e.s + 1)
    })
    this.lines = lines.length
    if (torn || this.lines > 2 * this.window) await this.compact()
  }

  private async append (text: string): Promise<void> {
    try {
      this.fh ??= await open(this.file, 'a', 0o600)
      await this.fh.appendFile(text)
      await this.fh.datasync()
    } catch (err) {
      // The file may now end in a partial line; the next reservation rewrites it first.
      await this.fh?.close().catch(() => {})
      this.fh = undefined
      this.damaged = true
      throw this.stateError(err)
    }
  }

  /** Rewrites the journal with the remembered window (temp file, fsync, rename, fsync of the directory). */
  private async compact (): Promise<void> {
    // Ids are remembered in the order their numbers were handed out, so the newest (highest) number is
    // always among them and `next` survives the rewrite.
    const entries = [...this.keys]
    const text = entries.map(([k, e]) => JSON.stringify({ k, s: e.s, f: e.f }) + '\n').join('')
    try {
      await this.fh?.close()
      this.fh = undefined
      await writeFileAtomic(this.file, text)
    } catch (err) {
      throw this.stateError(err)
    }
    this.lines = entries.length
  }

  private stateError (why: unknown): AuditError {
    return new AuditError('AUD_ERR_SEQUENCE_STATE', [this.file, why], why instanceof Error ? { cause: why } : {})
  }
}
