/**
 * The demo data generator behind `auditline run --demo` (issue #7): writes synthetic log lines
 * (generate.ts) into files under one directory, for the normal collectors to follow with the real
 * parsers. First a backfill dated over the last minutes, then new lines dated now, at a steady rate,
 * until close(). Files are only ever appended to, with no handle kept open between writes, so a restart
 * continues the same files and the collectors' checkpoints stay valid. See docs/sources/demo.md.
 */
import { appendFile, mkdir, stat } from 'node:fs/promises'
import { randomInt } from 'node:crypto'
import { join, resolve } from 'node:path'
import { AuditError } from '../../lib/errors.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import type { SourceConfig } from '../config.ts'
import { createDemoStreams, deriveSeed, Rng, type DemoStream } from './generate.ts'

export interface DemoOptions {
  /** Directory the log files are written to; created when missing. Example: `./var/demo-logs`. */
  dir: string
  /** New lines per second over all sources once the backfill is written. Default `20`. */
  linesPerSecond?: number
  /** How many minutes before now the backfill reaches back (web lines: not before the current UTC day); `0`: none. Default `60`. */
  backfillMinutes?: number
  /** Seed of the generators: one seed and one sequence of clock readings give the same lines. Default: random. */
  seed?: number
  /** The clock. Default: the system clock. */
  now?: () => Date
  /** Where a failed append of the running generator is reported. Default: a logger of its own (component `ingest.demo`). */
  log?: Logger
}

export interface RunningDemo {
  /** The `ingest.sources` entries that follow the demo's files. */
  sources: SourceConfig[]
  /** Stops writing; resolves once the last append has finished. */
  close (): Promise<void>
}

const TICK_MS = 250
/**
 * The backfill holds at most this many lines, so that the pipeline has read it within seconds and the live
 * lines show without delay; a longer backfill is thinner than the live rate.
 */
const BACKFILL_MAX_LINES = 50_000
/** The backfill ends this long before now: lines of one moment spread over up to half a second after it. */
const BACKFILL_END_GAP_MS = 2000
/** Backfill appends are cut at about this size, bounding memory however long the backfill. */
const CHUNK_BYTES = 1 << 20
/** A tick never makes up for more missed time than this (after a suspended machine or a stalled disk). */
const MAX_CATCH_UP_MS = 5000
const DAY_MS = 86_400_000

function invalid (what: string): AuditError {
  return new AuditError('AUD_ERR_CONFIG_INVALID', [`demo: ${what}`])
}

/** Writes `stream`'s lines dated from `from` to `to` (ms) at `rate` lines per second into `path`. */
async function backfill (stream: DemoStream, path: string, from: number, to: number, rate: number, rng: Rng): Promise<void> {
  let chunk: string[] = []
  let bytes = 0
  for (let t = from + rng.next() * 1000 / rate; t < to;) {
    const lines = stream.next(new Date(t))
    for (const l of lines) { chunk.push(l); bytes += l.length + 1 }
    if (bytes >= CHUNK_BYTES) {
      await appendFile(path, chunk.join('\n') + '\n')
      chunk = []
      bytes = 0
    }
    // Exponential gaps: arrivals of independent sessions, `rate` lines per second on average.
    t += -Math.log(1 - rng.next()) * lines.length * 1000 / rate
  }
  if (chunk.length > 0) await appendFile(path, chunk.join('\n') + '\n')
}

async function isEmpty (path: string): Promise<boolean> {
  try {
    return (await stat(path)).size === 0
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
}

/**
 * Starts the generator: creates `dir`, writes the backfill into files that are missing or empty (a file
 * that already holds lines, from an earlier run, only gets new ones: its lines stay in time order), then
 * appends new lines every quarter second until close().
 */
export async function startDemo (opts: DemoOptions): Promise<RunningDemo> {
  const rate = opts.linesPerSecond ?? 20
  const backfillMinutes = opts.backfillMinutes ?? 60
  if (!Number.isFinite(rate) || rate <= 0 || rate > 100_000) throw invalid(`linesPerSecond must be above 0 and at most 100000 (got ${rate})`)
  if (!Number.isFinite(backfillMinutes) || backfillMinutes < 0 || backfillMinutes > 10_080) throw invalid(`backfillMinutes must be from 0 to 10080 (got ${backfillMinutes})`)
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) throw invalid(`seed must be an integer (got ${opts.seed})`)
  const seed = opts.seed ?? randomInt(0x1_0000_0000)
  const now = opts.now ?? (() => new Date())
  const log = opts.log ?? createLogger().child({ component: 'ingest.demo' })
  const dir = resolve(opts.dir)
  const streams = createDemoStreams(seed)
  const paths = streams.map(s => join(dir, s.file))

  const started = now().getTime()
  const to = started - BACKFILL_END_GAP_MS
  const from = started - backfillMinutes * 60_000
  // The anonymizer's epoch is the UTC day: web lines from before it would only become dead letters.
  const webFrom = Math.max(from, Math.floor(started / DAY_MS) * DAY_MS)
  const scale = Math.min(1, BACKFILL_MAX_LINES / (rate * backfillMinutes * 60))
  try {
    await mkdir(dir, { recursive: true })
    await Promise.all(streams.map(async (s, i) => {
      const start = s.web ? webFrom : from
      if (start >= to || !await isEmpty(paths[i] as string)) return
      await backfill(s, paths[i] as string, start, to, rate * s.share * scale, new Rng(deriveSeed(seed, 100 + i)))
    }))
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`demo: cannot write the demo logs under ${dir}: ${(err as Error).message}`], { cause: err })
  }

  const credit = streams.map(() => 0)
  const failing = new Set<number>()
  let last = now().getTime()
  let closed = false
  let timer: NodeJS.Timeout | undefined
  let inFlight: Promise<void> = Promise.resolve()

  async function tick (): Promise<void> {
    const at = now()
    const dt = Math.min(Math.max(at.getTime() - last, 0), MAX_CATCH_UP_MS)
    last = at.getTime()
    await Promise.all(streams.map(async (s, i) => {
      const lines: string[] = []
      // Credit carries over between ticks (and goes below 0 after a multi-line moment): the average rate holds.
      credit[i] = (credit[i] as number) + rate * s.share * dt / 1000
      while ((credit[i] as number) >= 1) {
        const got = s.next(at)
        lines.push(...got)
        credit[i] = (credit[i] as number) - got.length
      }
      if (lines.length === 0) return
      try {
        await appendFile(paths[i] as string, lines.join('\n') + '\n')
        failing.delete(i)
      } catch (err) {
        // Synthetic lines: dropping them is harmless, but say so once per outage and file.
        if (!failing.has(i)) log.warn({ err, file: paths[i] }, 'Cannot append demo lines; dropping them until writing works again.')
        failing.add(i)
      }
    }))
  }

  function schedule (): void {
    timer = setTimeout(() => {
      inFlight = tick().then(() => { if (!closed) schedule() })
    }, TICK_MS)
  }
  schedule()

  return {
    sources: streams.map((s, i) => ({ ...structuredClone(s.source), paths: [paths[i] as string] })),
    async close () {
      closed = true
      clearTimeout(timer)
      await inFlight
    }
  }
}
