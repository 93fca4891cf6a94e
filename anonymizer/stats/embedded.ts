/**
 * The statistics stage of the embedded mode (#7): the same StatsAggregator as the Kafka stage (./run.ts), fed
 * from the store's `anon_log` (anonymized records only) instead of `web.access.anon.v1`. Delivery is the Kafka
 * stage's, with the position kept in the store's meta table instead of commit metadata:
 * - documents are written (overwrite by id) in the same transaction that moves the position;
 * - the position is the lowest record any open bucket still needs, so a crash rebuilds every open bucket;
 *   records below it are deleted from `anon_log`;
 * - the watermark and the record reached are saved with it and restored on start, so that re-read records do
 *   not produce half-rebuilt documents that overwrite complete ones (held back until the reached record).
 */
import type { Ctx, Running } from '../../lib/component.ts'
import { sleep } from '../../lib/component.ts'
import { isAuditError } from '../../lib/errors.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import { assertAnonymized } from '../record.ts'
import type { StatsConfig } from './config.ts'
import { StatsAggregator } from './aggregate.ts'
import { statsMetrics } from './run.ts'

/** What the stage needs of the embedded store and indexer (indexer/sqlite). */
export interface AnonLog {
  readAnon (afterSeq: number, limit: number): Array<{ seq: number, value: string }>
  getMeta (key: string): string | undefined
  setMeta (key: string, value: string): void
  trimAnon (belowSeq: number): number
  /** Last seq appended (0 when empty). */
  lastAnonSeq (): number
}

export interface StatsSink {
  /** Writes statistics documents and dead letters in one transaction with `extra` (the position). */
  writeStats (docs: readonly string[], dead: readonly DeadLetter[], extra: () => void): void
}

interface Position { v: 1, next: number, w: number | null, reached: number }

const POSITION_KEY = 'stats.position'
const BATCH = 5000

export interface EmbeddedStatsRunning extends Running {
  /** Records appended but not yet read by the stage (the channel's fill level). */
  lag (): number
  /** Resolves when the stage has read everything appended before the call. */
  caughtUp (): Promise<void>
}

export function startEmbeddedStats (cfg: StatsConfig, ctx: Ctx, log: AnonLog, sink: StatsSink): EmbeddedStatsRunning {
  const out = ctx.log.child({ component: 'anonymizer.stats' })
  const { records, docs: docsTotal, open } = statsMetrics(ctx.metrics)
  const agg = new StatsAggregator(cfg)
  const stop = new AbortController()

  const saved = ((): Position | undefined => {
    try { return JSON.parse(log.getMeta(POSITION_KEY) ?? 'null') as Position | undefined ?? undefined } catch { return undefined }
  })()
  let read = saved?.next ?? 0 // highest seq read (records > read are unread)
  let replayUntil = saved !== undefined && saved.reached > saved.next ? saved.reached : 0
  if (saved?.w !== null && saved?.w !== undefined) agg.raiseWatermark(0, saved.w)
  let lastRecordAt = Date.now()
  let waiters: Array<() => void> = []

  function flush (dead: DeadLetter[], all = false): void {
    const closedEarly = agg.enforceLimit()
    if (closedEarly > 0) out.warn({ days: closedEarly, maxOpenBuckets: cfg.maxOpenBuckets }, 'Too many open statistics buckets; closed the oldest day early.')
    const due = agg.due({ all, hold: () => replayUntil > read })
    const w = agg.watermark(0)
    const next = Number(agg.commitPoint(0, BigInt(read + 1))) - 1
    const position: Position = { v: 1, next, w: Number.isFinite(w) ? w : null, reached: Math.max(read, replayUntil) }
    sink.writeStats(due.map(e => JSON.stringify(e.doc)), dead, () => {
      log.setMeta(POSITION_KEY, JSON.stringify(position))
      log.trimAnon(next + 1)
    })
    for (const e of due) e.ack()
    docsTotal.inc(due.length)
    agg.expire()
    open.set(agg.openBuckets)
  }

  function step (): number {
    const rows = log.readAnon(read, BATCH)
    if (rows.length === 0) return 0
    const dead: DeadLetter[] = []
    for (const row of rows) {
      let rec: unknown
      try {
        rec = JSON.parse(row.value)
        assertAnonymized(rec)
      } catch (err) {
        if (row.seq > replayUntil) {
          // Position and reason only, like the Kafka stage.
          const code = isAuditError(err) ? err.code : 'AUD_ERR_STATS_DECODE'
          dead.push({ '@timestamp': new Date().toISOString(), stage: 'stats', code, reason: isAuditError(err) ? err.message : 'not a JSON anonymized web access record', source: { topic: 'anon_log', partition: 0, kafka_offset: String(row.seq) } })
        }
        continue
      }
      records.inc({ result: agg.add(rec, { partition: 0, offset: BigInt(row.seq) }) })
    }
    read = (rows[rows.length - 1] as { seq: number }).seq
    if (read >= replayUntil) replayUntil = 0
    lastRecordAt = Date.now()
    flush(dead)
    return rows.length
  }

  async function loop (): Promise<void> {
    while (!stop.signal.aborted) {
      let n = 0
      try {
        n = step()
      } catch (err) {
        out.error({ err }, 'Statistics step failed; retrying from the saved position.')
        await sleep(1000, stop.signal)
        continue
      }
      if (n > 0) continue
      for (const w of waiters) w()
      waiters = []
      // Idle: the watermark follows the wall clock, so that a quiet site's last hour is emitted.
      if (Date.now() - lastRecordAt >= cfg.idleMs && replayUntil === 0) {
        const before = agg.watermark(0)
        agg.raiseWatermark(0, Date.now() - cfg.allowedLatenessMs)
        if (agg.watermark(0) > before) flush([])
      }
      await sleep(200, stop.signal)
    }
  }

  const done = loop()
  out.info({ from: 'anon_log', position: read, allowedLatenessMs: cfg.allowedLatenessMs }, 'Statistics stage started (embedded).')
  return {
    lag: () => Math.max(0, log.lastAnonSeq() - read),
    caughtUp: () => new Promise(resolve => { waiters.push(resolve) }),
    async close () {
      stop.abort()
      await done
      try {
        flush([], true)
      } catch (err) {
        out.warn({ err }, 'Final statistics flush failed; open buckets are rebuilt from the saved position on restart.')
      }
      for (const w of waiters) w()
      out.info({ openBuckets: agg.openBuckets }, 'Statistics stage stopped.')
    }
  }
}
