/**
 * Retention: deletes whole expired daily indices (never `_delete_by_query`) and records every deletion as an
 * audit event in Kafka (`audit.api.v1`), from where the indexer indexes it like any other event.
 *
 * Per expired index, in this order (docs/retention.md):
 *   1. reserve the next sequence number and save the intent record in the checkpoint (fsync);
 *   2. produce the intent record `retention_delete_index` (acks=all): no deletion without a record;
 *   3. delete the index (only if it is still the index that was planned: same uuid);
 *   4. reserve the next number, save and produce `retention_index_deleted` with the result.
 * A crash or failure anywhere leaves the record in flight in the checkpoint; the next run sends it again
 * (identical, so it overwrites itself in the index) and finishes the deletion before it plans anything new.
 */
import type { Client } from '@elastic/elasticsearch'
import type { Producer } from 'kafkajs'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../lib/log.ts'
import type { Running } from '../../lib/component.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import { validateConfig } from '../../lib/config.ts'
import { AuditError } from '../../lib/errors.ts'
import { eventIndexPattern } from '../../lib/elasticsearch.ts'
import { RetentionConfigSchema, periodsOf, type RetentionConfig } from './config.ts'
import { planRetention, type KeptIndex } from './plan.ts'
import { deletionDone, deletionIntent, retentionStream, type DeletionResult, type DeletionTarget } from './record.ts'
import { RetentionCheckpoint, readState } from './state.ts'

export function validate (raw: unknown): RetentionConfig {
  return validateConfig(RetentionConfigSchema, raw)
}

export interface IndexInfo {
  index: string
  uuid: string
  /** `open` or `close`. */
  status: string
}

/** The few Elasticsearch calls retention makes (a fake in unit tests). */
export interface RetentionStore {
  list (pattern: string): Promise<IndexInfo[]>
  /** Documents in the index after a refresh; undefined when it cannot be counted (a closed index). */
  count (index: string): Promise<number | undefined>
  /** The index's uuid, undefined when no index of that name exists. */
  uuidOf (index: string): Promise<string | undefined>
  delete (index: string): Promise<DeletionResult>
}

function statusOf (err: unknown): number | undefined {
  return (err as { meta?: { statusCode?: number } }).meta?.statusCode
}

export function elasticsearchStore (es: Client): RetentionStore {
  return {
    async list (pattern) {
      const rows = await es.cat.indices({ index: pattern, format: 'json', h: ['index', 'uuid', 'status'], expand_wildcards: ['open', 'closed'] })
      return rows.map(r => ({ index: r.index ?? '', uuid: r.uuid ?? '', status: r.status ?? 'open' })).filter(r => r.index !== '')
    },
    async count (index) {
      try {
        // Documents indexed within the last refresh interval are not counted without a refresh.
        await es.indices.refresh({ index })
        return (await es.count({ index })).count
      } catch (err) {
        if (statusOf(err) === 400) return undefined // index_closed_exception
        throw err
      }
    },
    async uuidOf (index) {
      try {
        const res = await es.indices.get({ index, expand_wildcards: ['open', 'closed'] })
        return res[index]?.settings?.index?.uuid
      } catch (err) {
        if (statusOf(err) === 404) return undefined
        throw err
      }
    },
    async delete (index) {
      try {
        const res = await es.indices.delete({ index })
        if (res.acknowledged) return 'deleted'
        // Not acknowledged in time by every node: it may still go through; check rather than guess.
        const uuid = await this.uuidOf(index)
        if (uuid === undefined) return 'deleted'
        throw new Error('deletion not acknowledged and the index still exists')
      } catch (err) {
        if (statusOf(err) === 404) return 'not_found'
        throw new AuditError('AUD_ERR_RETENTION_DELETE', [index, err], { cause: err })
      }
    }
  }
}

/** Sends records with acks=all; resolves only after Kafka acknowledged all of them. */
export type Publish = (events: readonly AuditEvent[]) => Promise<void>

export function kafkaPublisher (producer: Producer, topic: string): Publish {
  return async (events) => {
    try {
      await producer.send({ topic, acks: -1, messages: events.map(e => ({ key: e.auditline.stream, value: JSON.stringify(e) })) })
    } catch (err) {
      throw new AuditError('AUD_ERR_KAFKA_PRODUCE', [events.length, topic, err], { cause: err })
    }
  }
}

export interface RetentionDeps {
  store: RetentionStore
  /** Absent only for dry runs. */
  publish?: Publish
  indexPrefix: string
  /** Host name of the deletion records (`host.name`, stream `<host>/retention`). */
  host: string
  /** Directory of the checkpoint (`retention.stateDir`, resolved). */
  stateDir: string
  /** The clock; tests inject one. */
  now: () => Date
  log: Logger
  metrics?: Registry
  /** Stops a run between two indices. */
  signal?: AbortSignal
}

export interface ReportedIndex {
  index: string
  class: string
  day: string
  periodDays: number
  expiredAt: string
  documents?: number
  /** Absent in a dry run. */
  result?: DeletionResult
}

export interface RetentionReport {
  at: string
  dryRun: boolean
  /** Expired indices: deleted (or, in a dry run, that would be deleted), in deletion order. */
  expired: ReportedIndex[]
  /** How many indices were kept, by reason. */
  kept: Record<KeptIndex['reason'], number>
  /** Indices matching the prefix that no policy covers: never deleted, listed so that they are noticed. */
  unmanaged: string[]
  /** A deletion an earlier run left unfinished, finished by this run. */
  recovered?: ReportedIndex
}

interface Metrics { deleted: Counter<'class'>, documents: Counter<'class'>, runs: Counter<'outcome'>, last: Gauge }

function metricsIn (reg: Registry): Metrics {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    deleted: get('auditline_retention_indices_deleted_total', () => new Counter({ name: 'auditline_retention_indices_deleted_total', help: 'Expired indices deleted by retention', labelNames: ['class'], registers: [reg] })),
    documents: get('auditline_retention_documents_deleted_total', () => new Counter({ name: 'auditline_retention_documents_deleted_total', help: 'Documents the deleted indices held', labelNames: ['class'], registers: [reg] })),
    runs: get('auditline_retention_runs_total', () => new Counter({ name: 'auditline_retention_runs_total', help: 'Retention runs by outcome', labelNames: ['outcome'], registers: [reg] })),
    last: get('auditline_retention_last_success_seconds', () => new Gauge({ name: 'auditline_retention_last_success_seconds', help: 'Unix time of the last successful retention run (alert when it falls behind)', registers: [reg] }))
  }
}

function reported (t: DeletionTarget, result?: DeletionResult): ReportedIndex {
  return {
    index: t.index,
    class: t.eventClass,
    day: t.day,
    periodDays: t.periodDays,
    expiredAt: t.expiredAt,
    ...(t.documents === undefined ? {} : { documents: t.documents }),
    ...(result === undefined ? {} : { result })
  }
}

/** One retention run. Throws on the first failure (the record in flight stays in the checkpoint for the next run). */
export async function run (cfg: RetentionConfig, deps: RetentionDeps, opts: { dryRun?: boolean } = {}): Promise<RetentionReport> {
  const m = deps.metrics === undefined ? undefined : metricsIn(deps.metrics)
  try {
    const report = await runOnce(cfg, deps, opts.dryRun === true, m)
    if (report.dryRun !== true) {
      m?.runs.inc({ outcome: 'success' })
      m?.last.set(Date.now() / 1000)
    }
    return report
  } catch (err) {
    m?.runs.inc({ outcome: 'failure' })
    throw err
  }
}

async function runOnce (cfg: RetentionConfig, deps: RetentionDeps, dryRun: boolean, m: Metrics | undefined): Promise<RetentionReport> {
  const log = deps.log
  const now = deps.now()
  const periods = periodsOf(cfg)
  const stream = retentionStream(deps.host)
  const pattern = eventIndexPattern(deps.indexPrefix)

  const planNow = async (): Promise<{ targets: DeletionTarget[], report: RetentionReport }> => {
    const listed = await deps.store.list(pattern)
    const uuids = new Map(listed.map(i => [i.index, i.uuid]))
    const plan = planRetention(listed.map(i => i.index), periods, deps.indexPrefix, now)
    const kept: RetentionReport['kept'] = { not_expired: 0, no_policy: 0, not_daily: 0 }
    for (const k of plan.kept) kept[k.reason]++
    const targets: DeletionTarget[] = plan.expired.map(e => ({ ...e, uuid: uuids.get(e.index) ?? '', documents: undefined }))
    const unmanaged = plan.kept.filter(k => k.reason !== 'not_expired').map(k => k.index)
    return { targets, report: { at: now.toISOString(), dryRun, expired: [], kept, unmanaged } }
  }

  if (dryRun) {
    const { targets, report } = await planNow()
    for (const t of targets) report.expired.push(reported({ ...t, documents: await deps.store.count(t.index) }))
    return report
  }

  const publish = deps.publish
  if (publish === undefined) throw new TypeError('retention needs a publisher unless it is a dry run')
  // Nothing expired and nothing in flight: done, without touching the state directory.
  const first = await planNow()
  const previous = await readState(deps.stateDir, deps.host, stream)
  if (first.targets.length === 0 && (previous?.pending ?? null) === null) return first.report

  const cp = await RetentionCheckpoint.open(deps.stateDir, deps.host, stream)
  try {
    /** Steps 2–4 for the record in flight (docs/retention.md). */
    const complete = async (): Promise<{ target: DeletionTarget, result: DeletionResult }> => {
      let p = cp.state.pending
      if (p === null) throw new Error('no record in flight')
      if (p.phase === 'intent') {
        await publish([p.event])
        const t = p.target
        // Delete only the index that was planned: a different uuid is a re-created index (a late event),
        // which gets its own plan, records and deletion once it has expired.
        const uuid = await deps.store.uuidOf(t.index)
        const result: DeletionResult = uuid === t.uuid ? await deps.store.delete(t.index) : 'not_found'
        const seq = cp.state.next
        await cp.save({ ...cp.state, next: seq + 1, pending: { phase: 'done', target: t, result, event: deletionDone(t, result, deps.host, seq, deps.now()) } })
        p = cp.state.pending as NonNullable<typeof p>
      }
      await publish([p.event])
      await cp.save({ ...cp.state, pending: null })
      const result = p.result ?? 'deleted'
      if (result === 'deleted') {
        m?.deleted.inc({ class: p.target.eventClass })
        if (p.target.documents !== undefined) m?.documents.inc({ class: p.target.eventClass }, p.target.documents)
      }
      log.info({ index: p.target.index, class: p.target.eventClass, documents: p.target.documents, result, sequence: p.event.event.sequence }, 'Expired index deleted and recorded.')
      return { target: p.target, result }
    }

    let recovered: ReportedIndex | undefined
    if (cp.state.pending !== null) {
      log.warn({ index: cp.state.pending.target.index, phase: cp.state.pending.phase }, 'Finishing a deletion an earlier retention run left unfinished.')
      const r = await complete()
      recovered = reported(r.target, r.result)
    }
    // Planned again under the lock: another run may have deleted indices since the first look.
    const { targets, report } = await planNow()
    if (recovered !== undefined) report.recovered = recovered
    for (const planned of targets) {
      if (deps.signal?.aborted === true) break
      const t: DeletionTarget = { ...planned, documents: await deps.store.count(planned.index) }
      const seq = cp.state.next
      await cp.save({ ...cp.state, next: seq + 1, pending: { phase: 'intent', target: t, event: deletionIntent(t, deps.host, seq, deps.now()) } })
      const r = await complete()
      report.expired.push(reported(r.target, r.result))
    }
    return report
  } finally {
    await cp.release()
  }
}

/**
 * Scheduled runs: the first now, then every `intervalMs` after the previous one ended. A failed run is logged
 * and tried again at the next interval (its record in flight is finished first). `intervalMs: 0` schedules nothing.
 */
export function startScheduled (cfg: RetentionConfig, deps: RetentionDeps): Running {
  const log = deps.log.child({ component: 'indexer.retention' })
  if (cfg.intervalMs === 0) return { async close () {} }
  const stop = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let current: Promise<void> | undefined
  const tick = (): void => {
    current = run(cfg, { ...deps, log, signal: stop.signal }).then(
      report => {
        if (report.expired.length > 0 || report.recovered !== undefined) log.info({ deleted: report.expired.length, kept: report.kept }, 'Retention run finished.')
      },
      (err: unknown) => {
        const code = (err as { code?: string }).code ?? 'AUD_ERR_RETENTION_DELETE'
        log.warn({ err, error_code: code }, 'Retention run failed; trying again at the next interval.')
      }
    ).finally(() => {
      current = undefined
      if (!stop.signal.aborted) timer = setTimeout(tick, cfg.intervalMs)
    })
  }
  tick()
  log.info({ intervalMs: cfg.intervalMs, classes: cfg.classes }, 'Scheduled retention started.')
  return {
    async close () {
      stop.abort()
      clearTimeout(timer)
      await current
    }
  }
}
