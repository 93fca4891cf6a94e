/**
 * The embedded mode (#7) next to the distributed mode, on the same data in the same run. Prints figures only;
 * never asserts.
 *
 * 1. File → searchable: a file of real sshd syslog lines (the captured fixture, repeated to `--lines`) through
 *    each mode's whole pipeline (collector, indexer, store, query API) with the same configuration. The clock runs
 *    from starting the collectors (embedded: `startEmbedded`, which starts them last) until the store holds every
 *    event the file yields (`auditline parse` on the same file): embedded, the `events` rows (committed = readable
 *    by the API); distributed, Elasticsearch's `_count`, which sees refreshed documents only, i.e. searchable ones.
 *    The distributed indexer has joined its consumer group before the clock starts. The query API's exact count
 *    (`/v1/events/counts`) is read after.
 * 2. Search latency over `--events` events: both stores seeded at the same time with bench/query.ts's events
 *    (embedded: `SqliteStore.indexEvents`, one transaction per 10k, as the embedded indexer writes; distributed: bulk,
 *    refresh, force-merge), then p50/p99 of bench/query.ts's query set through the query API (HTTP, audit records
 *    dropped in both), the two modes' runs alternating. The SQLite store is measured and queried as after a restart
 *    (closed once: WAL checkpointed, planner statistics refreshed), Elasticsearch's primaries after the force-merge.
 *
 *   npm run bench -- embedded [--lines 200000] [--events 1000000] [--runs 200]
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel } from 'kafkajs'
import { createKey } from '../lib/apikey.ts'
import { sleep, type Ctx } from '../lib/component.ts'
import { ensureTemplates, indexName } from '../lib/elasticsearch.ts'
import { createLogger } from '../lib/log.ts'
import { generateSealKey } from '../lib/seal.ts'
import { topicName } from '../lib/topics.ts'
import { loadAppConfig, type AppConfig } from '../cli/config.ts'
import { startEmbedded } from '../cli/embedded.ts'
import { parseFile } from '../cli/parse-file.ts'
import { init, startCollect, startIndex, startServe } from '../cli/pipeline.ts'
import { SqliteStore } from '../indexer/sqlite/store.ts'
import { SqliteEventStore } from '../query-api/store/sqlite.ts'
import { ElasticsearchEventStore } from '../query-api/store/elasticsearch.ts'
import { QUERIES, arg, benchApi, eventBatches, pct, seedElasticsearch } from './query.ts'
import { dropPrefix, endpoints } from './indexer.ts'
import { repeatToFile } from './ingest.ts'

const FIXTURE = 'test/fixtures/sshd/auth-rfc3339.log'
/** The collector host in both modes: same streams, same event ids. */
const HOST = 'bench'
const WAIT_MS = 300_000
/** How often "every event stored" is checked: often enough for the clock, rarely enough not to load either store. */
const POLL_MS = 100

function progress (msg: string): void {
  process.stderr.write(`  … ${msg}\n`)
}

function num (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

function mb (bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`
}

/** Polls `done` every `everyMs` until it holds; throws after WAIT_MS. */
async function until (what: string, done: () => boolean | Promise<boolean>, everyMs: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS
  while (!await done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS / 1000} s`)
    await sleep(everyMs)
  }
}

interface Key { id: string, key: string, hash: string }

/** Both modes' configuration: one sshd source on `file`, the API on a free port, no metrics endpoint, no scheduled retention. */
function pipelineConfig (dir: string, file: string, key: Key, sealKey: string, mode: Record<string, unknown>): Readonly<AppConfig> {
  return loadAppConfig(undefined, {}, {
    stateDir: dir,
    metrics: { port: -1 },
    ingest: { host: HOST, checkpointDir: join(dir, 'checkpoints'), sources: [{ name: 'bench', type: 'sshd', paths: [file] }] },
    retention: { intervalMs: 0 },
    queryApi: { port: 0, apiKeys: [{ id: key.id, hash: key.hash, roles: ['security'], owner: 'bench' }] },
    ...mode,
    indexer: { ...(mode.indexer as Record<string, unknown> | undefined), seal: { privateKey: sealKey } }
  })
}

/** The exact number of events the query API at `url` finds (every event, any time). */
async function apiCount (url: string, key: Key): Promise<number> {
  const res = await fetch(`${url}/v1/events/counts?case=bench&by=event.action`, { headers: { authorization: `ApiKey ${key.key}` } })
  if (res.status !== 200) throw new Error(`${url}/v1/events/counts: HTTP ${res.status}`)
  return (await res.json() as { total: number }).total
}

interface FileRun { ms: number, stored: number, dead: number, apiTotal: number }

function ctxOf (signal: AbortSignal): Ctx {
  return { log: createLogger({ level: 'error' }), signal, metrics: new Registry() }
}

async function embeddedFileRun (cfg: Readonly<AppConfig>, key: Key, expected: number): Promise<FileRun> {
  const stop = new AbortController()
  const t0 = performance.now()
  const running = await startEmbedded(cfg, ctxOf(stop.signal))
  try {
    await until('embedded: every event stored', () => running.store.countEvents() >= expected, POLL_MS)
    const ms = performance.now() - t0
    return { ms, stored: running.store.countEvents(), dead: running.store.deadLetterCount(), apiTotal: await apiCount(running.url, key) }
  } finally {
    await running.close()
    stop.abort()
  }
}

async function distributedFileRun (cfg: Readonly<AppConfig>, key: Key, expected: number, es: Client, kafka: Kafka): Promise<FileRun> {
  const stop = new AbortController()
  const ctx = ctxOf(stop.signal)
  await init(cfg, ctx)
  const admin = kafka.admin()
  await admin.connect()
  const closers: Array<() => Promise<void>> = [() => admin.disconnect()]
  try {
    const serve = await startServe(cfg, ctx)
    closers.push(() => serve.close())
    const index = await startIndex(cfg, ctx)
    closers.push(() => index.close())
    await until('the indexer joining its consumer group', async () => (await admin.describeGroups([cfg.indexer.groupId])).groups[0]?.state === 'Stable', 200)
    const pattern = `${cfg.elasticsearch.indexPrefix}-*`
    const t0 = performance.now()
    const collect = await startCollect(cfg, ctx)
    closers.push(() => collect.close())
    // A new index answers 503 until its shard is allocated: nothing searchable yet.
    await until('distributed: every event searchable', async () => await es.count({ index: pattern }).then(r => r.count, () => 0) >= expected, POLL_MS)
    const ms = performance.now() - t0
    const stored = (await es.count({ index: pattern })).count
    const dead = (await admin.fetchTopicOffsets(topicName(cfg.kafka.topicPrefix, 'deadletter'))).reduce((s, p) => s + Number(p.high), 0)
    return { ms, stored, dead, apiTotal: await apiCount(serve.url, key) }
  } finally {
    // Intake first, then the indexer, the API, the admin client.
    for (const close of closers.reverse()) await close()
    stop.abort()
  }
}

async function dropTopics (kafka: Kafka, prefix: string): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const topics = (await admin.listTopics()).filter(name => name.startsWith(prefix))
    if (topics.length > 0) await admin.deleteTopics({ topics })
  } finally {
    await admin.disconnect()
  }
}

/**
 * Seeds events 0..n-1 as the embedded indexer writes them: one `indexEvents` transaction per 10k. Yields to the
 * event loop between batches, so that Elasticsearch is seeded at the same time.
 */
async function seedSqlite (file: string, prefix: string, n: number): Promise<void> {
  const store = SqliteStore.open(file, { indexPrefix: prefix })
  try {
    for (const { events, done } of eventBatches(n)) {
      store.indexEvents(events.map(e => ({ index: indexName(prefix, 'ssh', e['@timestamp']), id: e.event.id, doc: e })))
      if (done % 200_000 === 0) progress(`SQLite: ${num(done)} events`)
      await new Promise(resolve => setImmediate(resolve))
    }
  } finally {
    store.close()
  }
}

async function fileSize (file: string): Promise<number> {
  return await stat(file).then(s => s.size, () => 0)
}

export async function benchEmbedded (args: string[]): Promise<void> {
  const lines = arg(args, '--lines', 200_000)
  const n = arg(args, '--events', 1_000_000)
  const runs = arg(args, '--runs', 200)
  const dir = await mkdtemp(join(tmpdir(), 'auditline-bench-embedded-'))
  const { brokers, esUrl, started } = await endpoints()
  const es = new Client({ node: esUrl, requestTimeout: 120_000 })
  const kafka = new Kafka({ clientId: 'bench-embedded', brokers, logLevel: logLevel.NOTHING })
  const id = randomBytes(3).toString('hex')
  const topicPrefix = `benchemb${id}.`
  const prefixes = [`benchemb${id}f`, `benchemb${id}q`]
  const [filePrefix, queryPrefix] = prefixes as [string, string]
  try {
    // 1. File → searchable.
    const { file } = await repeatToFile(FIXTURE, dir, lines)
    const expect = await parseFile(file, 'sshd', undefined, HOST, { event: () => {}, dead: () => {} })
    const key = await createKey()
    const sealKey = generateSealKey().privatePem
    const embCfg = pipelineConfig(join(dir, 'embedded'), file, key, sealKey, {
      mode: 'embedded', embedded: { file: join(dir, 'embedded', 'auditline.db') }, elasticsearch: { indexPrefix: filePrefix }
    })
    process.stdout.write(`\nFile → searchable: ${num(lines)} sshd syslog lines (${FIXTURE} repeated) → ${num(expect.events)} events, ` +
      `${num(expect.deadLetters)} dead letters; both modes with configuration defaults (ingest.batchLines ${embCfg.ingest.batchLines})\n`)
    progress('embedded: file → SQLite')
    const emb = await embeddedFileRun(embCfg, key, expect.events)
    progress(`embedded: ${(emb.ms / 1000).toFixed(1)} s`)
    progress('distributed: file → Kafka → indexer → Elasticsearch')
    const dist = await distributedFileRun(pipelineConfig(join(dir, 'distributed'), file, key, sealKey, {
      mode: 'distributed',
      kafka: { brokers, topicPrefix },
      elasticsearch: { url: esUrl, indexPrefix: filePrefix, replicas: 0 },
      indexer: { groupId: `${topicPrefix}indexer` }
    }), key, expect.events, es, kafka)
    progress(`distributed: ${(dist.ms / 1000).toFixed(1)} s`)
    process.stdout.write(`${'mode'.padEnd(13)} ${'file → searchable'.padStart(18)} ${'events/s'.padStart(10)} ${'stored'.padStart(9)} ${'dead'.padStart(6)} ${'API count'.padStart(10)}\n`)
    for (const [name, r] of [['embedded', emb], ['distributed', dist]] as const) {
      process.stdout.write(`${name.padEnd(13)} ${`${(r.ms / 1000).toFixed(2)} s`.padStart(18)} ${num(expect.events / (r.ms / 1000)).padStart(10)} ${num(r.stored).padStart(9)} ${num(r.dead).padStart(6)} ${num(r.apiTotal).padStart(10)}\n`)
    }
    process.stdout.write(`ratio embedded / distributed (events/s): ${(dist.ms / emb.ms).toFixed(2)}\n`)

    // 2. Search latency over n events. Both stores are seeded at once: seeding is not what is measured, and it shortens the run.
    const dbFile = join(dir, 'seeded.db')
    await ensureTemplates(es, { indexPrefix: queryPrefix, replicas: 0 })
    const t = performance.now()
    const seconds = (): number => (performance.now() - t) / 1000
    const [sqliteSeedS, esSeedS] = await Promise.all([
      seedSqlite(dbFile, queryPrefix, n).then(seconds),
      seedElasticsearch(es, queryPrefix, n, done => { if (done % 200_000 === 0) progress(`Elasticsearch: ${num(done)} events`) }).then(seconds)
    ])
    progress(`seeded: SQLite after ${sqliteSeedS.toFixed(0)} s, Elasticsearch after ${esSeedS.toFixed(0)} s`)
    const sqliteBytes = await fileSize(dbFile) + await fileSize(`${dbFile}-wal`)
    const esBytes = (await es.indices.stats({ index: `${queryPrefix}-*`, metric: 'store' }))._all.primaries?.store?.size_in_bytes ?? 0

    const store = SqliteStore.open(dbFile, { indexPrefix: queryPrefix })
    const closers: Array<() => Promise<void>> = [async () => { store.close() }]
    try {
      const embApi = await benchApi(new SqliteEventStore(store.db))
      closers.push(() => embApi.close())
      const distApi = await benchApi(new ElasticsearchEventStore(es, queryPrefix))
      closers.push(() => distApi.close())
      process.stdout.write(`\nSearch latency over ${num(n)} events through the query API (HTTP), ${runs} runs per query and mode, alternating\n`)
      process.stdout.write(`seeding, both at once: SQLite ${num(n / sqliteSeedS)} events/s (10k per transaction), Elasticsearch ${num(n / esSeedS)} events/s (bulk 10k, refresh, force-merge)\n`)
      process.stdout.write(`size: SQLite file ${mb(sqliteBytes)}, Elasticsearch primaries ${mb(esBytes)} (ratio ${(sqliteBytes / esBytes).toFixed(2)})\n`)
      process.stdout.write(`${'query'.padEnd(24)} ${'emb p50'.padStart(9)} ${'emb p99'.padStart(9)} ${'dist p50'.padStart(9)} ${'dist p99'.padStart(9)} ${'emb/dist p50'.padStart(13)} ${'total (emb/dist)'.padStart(17)}\n`)
      const f = (x: number): string => `${x.toFixed(1)} ms`.padStart(9)
      for (const [name, qsRaw] of QUERIES) {
        const e = await embApi.resolve(qsRaw)
        const d = await distApi.resolve(qsRaw)
        const te: number[] = []
        const td: number[] = []
        for (let r = 0; r < runs; r++) {
          te.push(await embApi.time(e.qs))
          td.push(await distApi.time(d.qs))
        }
        const totals = e.total === d.total ? num(e.total) : `${num(e.total)}≠${num(d.total)}`
        process.stdout.write(`${name.padEnd(24)} ${f(pct(te, 50))} ${f(pct(te, 99))} ${f(pct(td, 50))} ${f(pct(td, 99))} ${(pct(te, 50) / pct(td, 50)).toFixed(2).padStart(13)} ${totals.padStart(17)}\n`)
      }
      process.stdout.write('\n')
    } finally {
      for (const close of closers.reverse()) await close()
    }
  } finally {
    // The bench shares the stack with everything else: leave nothing behind, and stop the stack only if it started it.
    for (const p of prefixes) await dropPrefix(es, p)
    await dropTopics(kafka, topicPrefix).catch(() => {})
    await es.close()
    await rm(dir, { recursive: true, force: true })
    if (started) {
      const { down } = await import('../deploy/local/stack.ts')
      await down()
    }
  }
}
