/**
 * Evidence exports (docs/exports.md): collects the events of typed filters and the seal checkpoints that prove
 * them, builds the bundle (lib/evidence.ts) and writes it as a tar. One code path for `POST /v1/exports` (in
 * the background, through `ExportJobs`) and for `auditline export` (in the foreground).
 */
import { randomUUID } from 'node:crypto'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Client } from '@elastic/elasticsearch'
import type { AuditEvent } from '../lib/ecs.ts'
import { AuditError, isAuditError } from '../lib/errors.ts'
import { buildBundle, writeTar, type Bundle, type ExportMeta, type Manifest } from '../lib/evidence.ts'
import type { SealCheckpoint } from '../lib/seal.ts'
import type { EventFilter, EventStore } from './store/types.ts'

/** What an export reads besides the events: the seal checkpoints. */
export interface SealSource {
  /** Whole checkpoints that hold any of `ids` (any order). */
  checkpointsHolding (ids: readonly string[]): Promise<SealCheckpoint[]>
  /** Checkpoints with seq in [lo, hi], without ids/hashes/timestamps (only their root statements are shipped). */
  chain (lo: number, hi: number): Promise<Array<Omit<SealCheckpoint, 'ids' | 'hashes' | 'timestamps'>>>
}

export function elasticsearchSeals (es: Client, sealsIndex: string): SealSource {
  return {
    async checkpointsHolding (ids) {
      const out = new Map<number, SealCheckpoint>()
      const covered = new Set<string>()
      for (let i = 0; i < ids.length; i += 500) {
        // Ids already in a fetched checkpoint are not asked for again (a checkpoint holds up to maxLeaves ids).
        const chunk = ids.slice(i, i + 500).filter(id => !covered.has(id))
        if (chunk.length === 0) continue
        // A replayed event may be sealed twice: at most a few checkpoints per id, and usually many ids per checkpoint.
        const res = await es.search<SealCheckpoint>({ index: sealsIndex, ignore_unavailable: true, size: Math.min(10_000, chunk.length * 2), query: { terms: { ids: chunk } } })
        for (const h of res.hits.hits) {
          if (h._source === undefined) continue
          out.set(h._source.seq, h._source)
          for (const id of h._source.ids) covered.add(id)
        }
      }
      return [...out.values()]
    },
    async chain (lo, hi) {
      const out: Array<Omit<SealCheckpoint, 'ids' | 'hashes' | 'timestamps'>> = []
      let after: number | undefined
      for (;;) {
        const res = await es.search<Omit<SealCheckpoint, 'ids' | 'hashes' | 'timestamps'>>({
          index: sealsIndex,
          size: 1000,
          query: { range: { seq: { gte: lo, lte: hi } } },
          sort: [{ seq: 'asc' }],
          _source_excludes: ['ids', 'hashes', 'timestamps'],
          ...(after === undefined ? {} : { search_after: [after] })
        })
        for (const h of res.hits.hits) if (h._source !== undefined) out.push(h._source)
        const last = res.hits.hits[res.hits.hits.length - 1]
        if (res.hits.hits.length < 1000 || last === undefined) return out
        after = Number(last.sort?.[0])
      }
    }
  }
}

export interface Progress {
  phase: 'queued' | 'events' | 'proofs' | 'writing' | 'done' | 'failed'
  /** Events read so far (phase `events`) or proven (later phases). */
  done: number
  /** Events matching the filters (as far as known). */
  total: number
}

export interface RunExportOptions {
  maxEvents: number
  publicKeyPem: string
  onProgress?: (p: Progress) => void
  /** Page size of the event reads. */
  pageSize?: number
}

/**
 * Reads the matching events oldest first, the checkpoints that seal them and the chain between, and builds the
 * bundle. Events not sealed yet (the indexer seals every `sliceMs`) are left out and counted in the manifest.
 */
export async function runExport (store: EventStore, seals: SealSource, filter: EventFilter, meta: ExportMeta, o: RunExportOptions): Promise<{ bundle: Bundle, manifest: Manifest }> {
  const progress = o.onProgress ?? (() => {})
  const events: AuditEvent[] = []
  let after: string | undefined
  let total = 0
  for (;;) {
    const page = await store.searchEvents(filter, { size: o.pageSize ?? 1000, order: 'asc', ...(after === undefined ? {} : { after }) })
    if (after === undefined) {
      total = page.total
      if (page.total > o.maxEvents) throw new AuditError('AUD_ERR_EXPORT_TOO_LARGE', [page.totalIsLowerBound ? `at least ${page.total}` : page.total, o.maxEvents])
    }
    events.push(...page.events)
    if (events.length > o.maxEvents) throw new AuditError('AUD_ERR_EXPORT_TOO_LARGE', [`more than ${events.length}`, o.maxEvents])
    total = Math.max(total, events.length)
    progress({ phase: 'events', done: events.length, total })
    if (page.next === undefined || page.events.length === 0) break
    after = page.next
  }
  const checkpoints = await seals.checkpointsHolding(events.map(e => e.event.id))
  const sealed = new Set<string>()
  for (const cp of checkpoints) for (const id of cp.ids) sealed.add(id)
  const proven = events.filter(e => sealed.has(e.event.id))
  progress({ phase: 'proofs', done: 0, total: proven.length })
  const seqs = checkpoints.map(c => c.seq)
  const chain = seqs.length === 0 ? [] : await seals.chain(Math.min(...seqs), Math.max(...seqs))
  const built = buildBundle({ meta, events: proven, checkpoints, chain, publicKeyPem: o.publicKeyPem, unsealedSkipped: events.length - proven.length })
  progress({ phase: 'proofs', done: proven.length, total: proven.length })
  return built
}

/** Jobs kept in memory before the oldest finished ones are forgotten. */
const MAX_JOBS = 1000

export interface ExportRequest {
  filter: EventFilter
  caseId: string
  reason: string
  requester: string
  /** API key id of the requester: only it (or an admin) may read the job. */
  ownerKey: string
}

export interface ExportJob {
  id: string
  status: 'queued' | 'running' | 'done' | 'failed'
  progress: Progress
  caseId: string
  created: string
  finished?: string
  /** Why it failed (an AuditError message; internals stay in the log). */
  error?: { code: string, message: string }
  counts?: Manifest['counts']
  ownerKey: string
  /** Where the tar is, once done. */
  file?: string
}

/**
 * In-process job runner: jobs in memory (a restart forgets them; their bundles stay on disk), one export at a
 * time so that a large export cannot starve searches of Elasticsearch capacity.
 */
export class ExportJobs {
  readonly #jobs = new Map<string, ExportJob>()
  #chain: Promise<void> = Promise.resolve()

  constructor (private readonly o: {
    store: EventStore
    seals: SealSource
    dir: string
    maxEvents: number
    /** The seal public key (PEM), or undefined: exports then fail with AUD_ERR_EXPORT_BUILD. */
    publicKeyPem: string | undefined
    onError?: (job: ExportJob, err: unknown) => void
    now?: () => Date
  }) {}

  submit (req: ExportRequest): ExportJob {
    const now = (this.o.now ?? (() => new Date()))()
    // Bounded memory: the oldest finished jobs are forgotten first (their bundles stay on disk).
    for (const [id, j] of this.#jobs) {
      if (this.#jobs.size < MAX_JOBS) break
      if (j.status === 'done' || j.status === 'failed') this.#jobs.delete(id)
    }
    const job: ExportJob = { id: randomUUID(), status: 'queued', progress: { phase: 'queued', done: 0, total: 0 }, caseId: req.caseId, created: now.toISOString(), ownerKey: req.ownerKey }
    this.#jobs.set(job.id, job)
    this.#chain = this.#chain.then(async () => { await this.#run(job, req) })
    return job
  }

  get (id: string): ExportJob | undefined {
    return this.#jobs.get(id)
  }

  /** Resolves when every job submitted so far has finished. */
  async idle (): Promise<void> {
    await this.#chain
  }

  async #run (job: ExportJob, req: ExportRequest): Promise<void> {
    job.status = 'running'
    try {
      if (this.o.publicKeyPem === undefined) throw new AuditError('AUD_ERR_EXPORT_BUILD', ['no seal public key configured (queryApi.exports.publicKeyFile, or indexer.seal.privateKeyFile)'])
      const meta: ExportMeta = { id: job.id, caseId: req.caseId, reason: req.reason, requester: req.requester, query: { ...req.filter }, created: job.created }
      const { bundle, manifest } = await runExport(this.o.store, this.o.seals, req.filter, meta, {
        maxEvents: this.o.maxEvents,
        publicKeyPem: this.o.publicKeyPem,
        onProgress: p => { job.progress = p }
      })
      job.progress = { phase: 'writing', done: manifest.counts.events, total: manifest.counts.events }
      await mkdir(this.o.dir, { recursive: true, mode: 0o700 })
      const file = join(this.o.dir, `${job.id}.tar`)
      // Written aside and renamed: a download never sees half a bundle.
      await writeFile(file + '.part', writeTar(`evidence-${job.id}`, bundle, new Date(job.created)), { mode: 0o600 })
      await rename(file + '.part', file)
      job.file = file
      job.counts = manifest.counts
      job.status = 'done'
      job.progress = { phase: 'done', done: manifest.counts.events, total: manifest.counts.events }
    } catch (err) {
      job.status = 'failed'
      job.progress = { ...job.progress, phase: 'failed' }
      job.error = isAuditError(err) ? { code: err.code, message: err.message } : { code: 'AUD_ERR_API_INTERNAL', message: 'Internal error' }
      this.o.onError?.(job, err)
    }
    job.finished = (this.o.now ?? (() => new Date()))().toISOString()
  }
}
