/**
 * The two stores the behaviour suite runs against (#7): the distributed mode (Kafka + Elasticsearch of the
 * integration stack, unique topic and index prefixes per run) and the embedded mode (one SQLite file in the
 * run's temp dir). Each adapter starts the whole pipeline in this process and knows how to tamper with its
 * store and how to read everything the store holds; verify and retention are the CLI's own functions, which
 * pick the store from the config.
 */
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { Ctx } from '../../../lib/component.ts'
import { indexName } from '../../../lib/elasticsearch.ts'
import type { Logger } from '../../../lib/log.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { runRetention, startAll } from '../../../cli/pipeline.ts'
import { startEmbedded } from '../../../cli/embedded.ts'
import { verifyDeployment, type VerifyOptions, type VerifySummary } from '../../../cli/verify.ts'
import type { Finding } from '../../../indexer/verify.ts'
import type { RetentionReport } from '../../../indexer/retention/run.ts'
import { ipBytes } from '../../../indexer/sqlite/ip.ts'
import { ftsText } from '../../../indexer/sqlite/store.ts'
import { formatIPv4, formatIPv6, isV4Mapped } from '../../../anonymizer/anonymize-ip/ip.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { deleteIndices, esClient } from '../../helpers/query-api.ts'

/** What the suite configures the same way for every store: `stateDir` and the component sections. */
export interface BaseConfig {
  stateDir: string
  sections: Record<string, Record<string, unknown>>
}

export interface Started {
  /** Query API base URL. */
  url: string
  /** Control-panel intake base URL. */
  panelUrl: string
  collect: { drained (): Promise<void> }
  close (): Promise<void>
}

export interface BehaviourBackend {
  name: string
  /** Full app config for this run: the base plus this store's connection and unique names. */
  config (base: BaseConfig): AppConfig
  /** Starts every stage in this process. */
  start (cfg: AppConfig, ctx: Ctx): Promise<Started>
  /** `auditline verify`: every finding and the summary. */
  verify (cfg: AppConfig, opts: VerifyOptions, log: Logger): Promise<{ summary: VerifySummary, findings: Finding[] }>
  /** One `auditline retention` run with an injected clock. */
  retention (cfg: AppConfig, ctx: Ctx, now: Date): Promise<RetentionReport>
  /** Changes made behind auditline's back, straight in the store. */
  tamper: {
    change (cfg: AppConfig, id: string, mutate: (doc: AuditEvent) => void): Promise<void>
    remove (cfg: AppConfig, id: string): Promise<void>
    insert (cfg: AppConfig, doc: AuditEvent): Promise<void>
  }
  /** Everything the store holds, as text (the leak test searches it). */
  dump (cfg: AppConfig): Promise<string>
  /** Removes what the run left outside its temp dir. */
  cleanup (cfg: AppConfig): Promise<void>
}

/** The base sections with `extra` merged into them section by section. */
function merged (base: BaseConfig, extra: Record<string, Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = { stateDir: base.stateDir, ...base.sections }
  for (const [k, v] of Object.entries(extra)) out[k] = { ...base.sections[k], ...v }
  return out
}

async function verify (cfg: AppConfig, opts: VerifyOptions, log: Logger): Promise<{ summary: VerifySummary, findings: Finding[] }> {
  const findings: Finding[] = []
  const summary = await verifyDeployment(cfg, opts, f => { findings.push(f) }, log)
  return { summary, findings }
}

async function retention (cfg: AppConfig, ctx: Ctx, now: Date): Promise<RetentionReport> {
  return await runRetention(cfg, ctx, { now: () => now })
}

/** Every event index of the deployment, where a tampered document is looked up. */
const eventIndices = (cfg: AppConfig): string => `${cfg.elasticsearch.indexPrefix}-*`

async function withEs<T> (cfg: AppConfig, fn: (es: ReturnType<typeof esClient>) => Promise<T>): Promise<T> {
  const es = esClient(cfg.elasticsearch.url)
  try {
    return await fn(es)
  } finally {
    await es.close()
  }
}

/** The one document with `_id` `id` in the deployment's event indices. */
async function locate (es: ReturnType<typeof esClient>, cfg: AppConfig, id: string): Promise<{ index: string, doc: AuditEvent }> {
  await es.indices.refresh({ index: eventIndices(cfg) })
  const res = await es.search<AuditEvent>({ index: eventIndices(cfg), query: { ids: { values: [id] } }, size: 2 })
  const [hit, ...more] = res.hits.hits
  if (hit?._source === undefined || more.length > 0) throw new Error(`expected one document ${id}, found ${res.hits.hits.length}`)
  return { index: hit._index, doc: hit._source }
}

export const elasticsearchBackend: BehaviourBackend = {
  name: 'Kafka + Elasticsearch',
  config (base) {
    const { topicPrefix, indexPrefix } = uniquePrefix()
    return loadAppConfig(undefined, {}, merged(base, {
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      indexer: { groupId: `${topicPrefix}indexer` },
      anonymizer: { groupId: `${topicPrefix}anon` },
      stats: { groupId: `${topicPrefix}stats` }
    })) as AppConfig
  },
  async start (cfg, ctx) {
    const r = await startAll(cfg, ctx)
    if (r.panel === undefined) throw new Error('the panel intake did not start (no panel.clients?)')
    return { url: r.url, panelUrl: r.panel.url, collect: r.collect, close: r.close }
  },
  verify,
  retention,
  tamper: {
    async change (cfg, id, mutate) {
      await withEs(cfg, async es => {
        const { index, doc } = await locate(es, cfg, id)
        mutate(doc)
        await es.index({ index, id, document: doc, refresh: true })
      })
    },
    async remove (cfg, id) {
      await withEs(cfg, async es => {
        const { index } = await locate(es, cfg, id)
        await es.delete({ index, id, refresh: true })
      })
    },
    async insert (cfg, doc) {
      await withEs(cfg, async es => {
        await es.index({ index: indexName(cfg.elasticsearch.indexPrefix, doc.auditline.class, doc['@timestamp']), id: doc.event.id, document: doc, refresh: true })
      })
    }
  },
  async dump (cfg) {
    return await withEs(cfg, async es => {
      // `<prefix>*` holds the event, statistics and seals indices of this run.
      const index = `${cfg.elasticsearch.indexPrefix}*`
      await es.indices.refresh({ index })
      const res = await es.search({ index, size: 10_000, query: { match_all: {} } })
      const total = res.hits.total
      if (typeof total === 'object' && total.value > res.hits.hits.length) throw new Error(`dump holds ${res.hits.hits.length} of ${total.value} documents`)
      return JSON.stringify(res.hits.hits)
    })
  },
  async cleanup (cfg) {
    await withEs(cfg, async es => { await deleteIndices(es, cfg.elasticsearch.indexPrefix) })
  }
}

/** A second connection to the embedded store's file (WAL: the running pipeline keeps writing meanwhile). */
function withSqlite<T> (cfg: AppConfig, fn: (db: Database.Database) => T): T {
  const db = new Database(cfg.embedded.file, { fileMustExist: true, timeout: 10_000 })
  try {
    return fn(db)
  } finally {
    db.close()
  }
}

/** A column value as text; 16-byte BLOBs are `source_ip` addresses (indexer/sqlite/ip.ts) and read as such. */
function cellText (v: unknown): string {
  if (!Buffer.isBuffer(v)) return String(v)
  if (v.length !== 16) return v.toString('latin1')
  return isV4Mapped(v) ? formatIPv4(v.subarray(12)) : formatIPv6(v)
}

export const sqliteBackend: BehaviourBackend = {
  name: 'embedded SQLite',
  config (base) {
    return loadAppConfig(undefined, {}, merged(base, {
      kafka: { brokers: [] },
      elasticsearch: { url: '', indexPrefix: 'auditline' },
      embedded: { file: join(base.stateDir, 'auditline.db') }
    })) as AppConfig
  },
  async start (cfg, ctx) {
    const r = await startEmbedded(cfg, ctx)
    if (r.panel === undefined) throw new Error('the panel intake did not start (no panel.clients?)')
    return { url: r.url, panelUrl: r.panel.url, collect: r.collect, close: () => r.close() }
  },
  verify,
  retention,
  tamper: {
    async change (cfg, id, mutate) {
      withSqlite(cfg, db => {
        const doc = db.prepare<[string], string>('SELECT doc FROM events WHERE id = ?').pluck().get(id)
        if (doc === undefined) throw new Error(`no event ${id}`)
        const changed = JSON.parse(doc) as AuditEvent
        mutate(changed)
        db.prepare('UPDATE events SET doc = ? WHERE id = ?').run(JSON.stringify(changed), id)
      })
    },
    async remove (cfg, id) {
      withSqlite(cfg, db => {
        if (db.prepare('DELETE FROM events WHERE id = ?').run(id).changes !== 1) throw new Error(`no event ${id}`)
      })
    },
    async insert (cfg, doc) {
      // A row as the store writes one (indexer/sqlite/schema.ts): filter columns, categories and free text.
      withSqlite(cfg, db => db.transaction(() => {
        const ip = doc.source?.ip === undefined ? null : ipBytes(doc.source.ip) ?? null
        const session = doc.ssh?.session_id ?? doc.ftp?.session_id ?? doc.db?.connection_id
        const { lastInsertRowid: seq } = db.prepare(`INSERT INTO events
          (id, idx, ts, class, action, outcome, user_name, host_name, source_ip, ticket, customer, session, stream, sequence, doc)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
          doc.event.id, indexName(cfg.elasticsearch.indexPrefix, doc.auditline.class, doc['@timestamp']), Date.parse(doc['@timestamp']),
          doc.auditline.class, doc.event.action, doc.event.outcome ?? null, doc.user?.name ?? null, doc.host?.name ?? null, ip,
          doc.panel?.ticket_id ?? null, doc.panel?.customer ?? null, session === undefined ? null : String(session),
          doc.auditline.stream, doc.event.sequence, JSON.stringify(doc))
        for (const c of doc.event.category) db.prepare('INSERT INTO event_categories (category, seq) VALUES (?, ?)').run(c, seq)
        db.prepare('INSERT INTO events_fts (rowid, text) VALUES (?, ?)').run(seq, ftsText(doc))
      })())
    }
  },
  async dump (cfg) {
    // The bytes of the file and of its WAL (and shared-memory file), then every row of every table.
    const file = cfg.embedded.file
    const parts: string[] = []
    for (const name of (await readdir(dirname(file))).filter(n => n.startsWith(basename(file)))) {
      parts.push((await readFile(join(dirname(file), name))).toString('latin1'))
    }
    withSqlite(cfg, db => {
      const tables = db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()
      for (const t of tables) {
        for (const row of db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]) parts.push(row.map(cellText).join('\t'))
      }
    })
    return parts.join('\n')
  },
  async cleanup () {}
}
