/**
 * Indexer throughput (issue #5): documents/s into the local Elasticsearch node through the indexer (Kafka fetch,
 * JSON decode, schema check, hash check, bulk index, dead-letter check, sealing) against the Elasticsearch
 * client's bulk helper alone (`client.helpers.bulk`, its defaults) on the same documents, in the same run. Prints
 * the ratio and the target (≥ 0.8); never asserts (machines and neighbours differ).
 *
 * The events are produced to a fresh topic before the indexer starts (not timed). The indexer's clock starts when
 * its consumer has joined the group (so the group join, which has nothing to do with throughput, is left out) and
 * stops when Elasticsearch acknowledged the last document (`auditline_indexer_docs_indexed_total` = N); the time
 * until the offsets are committed (after sealing) is printed next to it. Runs alternate (helper, indexer) for
 * `--rounds`; the best of each is compared, so that a neighbour's burst does not pick the winner.
 *
 *   npm run bench -- indexer [--events 100000] [--rounds 2] [--partitions-concurrently 1] [--bulk-size 1000]
 *
 * Without options the indexer runs with its configuration defaults (`indexer.bulkSize`, `indexer.partitionsConcurrently`).
 */
import { randomBytes } from 'node:crypto'
import { Registry, type Counter } from 'prom-client'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel } from 'kafkajs'
import { finalizeEvent } from '../ingest/common/finalize.ts'
import type { AuditEvent } from '../lib/ecs.ts'
import { createConsumer, createProducer, ensureTopics } from '../lib/kafka.ts'
import { ensureTemplates, indexName } from '../lib/elasticsearch.ts'
import { topicName } from '../lib/topics.ts'
import { createLogger } from '../lib/log.ts'
import { loadAppConfig } from '../cli/config.ts'
import * as indexer from '../indexer/elasticsearch/run.ts'
// The same producing step the integration tests use (acks=all, chunked under the request limit).
import { produceEvents } from '../test/helpers/audit-events.ts'

function arg (args: string[], name: string, def: number): number {
  const i = args.indexOf(name)
  const v = i >= 0 ? Number(args[i + 1]) : def
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`)
  return v
}

/** N distinct sshd logins of one stream, all on one UTC day (one daily index), as collectors make them. */
function makeEvents (n: number): AuditEvent[] {
  const start = Date.parse('2026-11-28T00:00:00Z')
  const step = Math.max(1, Math.floor(86_000_000 / n))
  return Array.from({ length: n }, (_, i) => {
    const t = new Date(start + i * step)
    return finalizeEvent({
      '@timestamp': t.toISOString(),
      event: { kind: 'event', category: ['authentication', 'session'], type: ['start'], action: i % 7 === 0 ? 'ssh_login' : 'ssh_session_open', outcome: i % 11 === 0 ? 'failure' : 'success' },
      user: { name: `deploy-${i % 97}` },
      source: { ip: i % 5 === 0 ? `2001:db8::${(i % 4000).toString(16)}` : `198.51.${(i >> 8) % 250}.${i % 250}`, port: 1024 + (i % 60000) },
      process: { name: 'sshd', pid: 1000 + (i % 30000) },
      ssh: { method: i % 3 === 0 ? 'password' : 'publickey', key_type: 'ED25519', fingerprint: `SHA256:${(i * 2654435761 >>> 0).toString(36)}` }
    }, { host: 'bench-host', source: 'auth', fileKey: '2049:131', generation: 0, offset: i * 130, path: '/var/log/auth.log' }, i, 'sshd.auth', 'ssh', t)
  })
}

function rate (n: number, ms: number): string {
  return `${Math.round(n / (ms / 1000)).toLocaleString('en-US')} docs/s`
}

/** Kafka and Elasticsearch from KAFKA_BROKERS and ELASTICSEARCH_URL, else the local stack (`started`: this call started it). */
export async function endpoints (): Promise<{ brokers: string[], esUrl: string, started: boolean }> {
  const brokers = process.env.KAFKA_BROKERS?.split(',').filter(b => b !== '') ?? []
  const esUrl = process.env.ELASTICSEARCH_URL ?? ''
  if (brokers.length > 0 && esUrl !== '') return { brokers, esUrl, started: false }
  const { up } = await import('../deploy/local/stack.ts')
  const info = await up()
  return { brokers: info.kafka.brokers, esUrl: info.elasticsearch.url, started: !info.reused }
}

/** Deletes everything `ensureTemplates` and indexing made under an index prefix: indices, seals, templates. */
export async function dropPrefix (es: Client, prefix: string): Promise<void> {
  await es.indices.delete({ index: `${prefix}-*`, ignore_unavailable: true, allow_no_indices: true }).catch(() => {})
  await es.indices.delete({ index: `${prefix}_seals`, ignore_unavailable: true }).catch(() => {})
  for (const name of [`${prefix}-events`, `${prefix}-stats`, `${prefix}_seals`]) await es.indices.deleteIndexTemplate({ name }).catch(() => {})
}

export async function benchIndexer (args: string[]): Promise<void> {
  const n = arg(args, '--events', 100_000)
  const rounds = arg(args, '--rounds', 2)
  const partitionsConcurrently = arg(args, '--partitions-concurrently', 1)
  const bulkSize = arg(args, '--bulk-size', 1000)
  const { brokers, esUrl } = await endpoints()
  const es = new Client({ node: esUrl, requestTimeout: 60_000 })
  const kafka = new Kafka({ clientId: 'bench-indexer', brokers, logLevel: logLevel.NOTHING })
  const log = createLogger({ level: 'error' })
  const id = randomBytes(3).toString('hex')
  const prefixes: string[] = []
  const topics: string[] = []
  // The integ-test distribution has no `GET /`; the node API answers with the version.
  const version = Object.values((await es.nodes.info({ node_id: '_local' })).nodes)[0]?.version ?? 'unknown'
  process.stdout.write(`\nIndexer → Elasticsearch ${version} (local node, 1 shard, 0 replicas): ${n.toLocaleString('en-US')} sshd events, best of ${rounds}\n`)
  const events = makeEvents(n)
  const bytes = events.reduce((s, e) => s + JSON.stringify(e).length, 0)
  process.stdout.write(`  ${Math.round(bytes / n)} bytes per document on average\n\n`)

  const admin = kafka.admin()
  await admin.connect()
  try {
    // Warm-up: the node's JIT, the template, the file system cache.
    const warm = `benchidx${id}w`
    prefixes.push(warm)
    await ensureTemplates(es, { indexPrefix: warm, replicas: 0 })
    await helperRun(es, warm, events.slice(0, Math.min(n, 10_000)))

    let bestHelper = Infinity
    let bestShaped = Infinity
    let bestIndexer = Infinity
    let bestCommitted = Infinity
    for (let r = 0; r < rounds; r++) {
      const hp = `benchidx${id}h${r}`
      prefixes.push(hp)
      await ensureTemplates(es, { indexPrefix: hp, replicas: 0 })
      const h = await helperRun(es, hp, events)
      bestHelper = Math.min(bestHelper, h)
      // The same helper with the indexer's request shape: bulkSize documents per request, one request in flight
      // per partition processed at a time. Tells apart what the request shape costs from what the indexer's own work costs.
      const sp = `benchidx${id}s${r}`
      prefixes.push(sp)
      await ensureTemplates(es, { indexPrefix: sp, replicas: 0 })
      const shaped = await helperRun(es, sp, events, { flushBytes: Math.round(bulkSize * bytes / n), concurrency: partitionsConcurrently })
      bestShaped = Math.min(bestShaped, shaped)

      const ip = `benchidx${id}i${r}`
      const topicPrefix = `${ip}.`
      prefixes.push(ip)
      await ensureTemplates(es, { indexPrefix: ip, replicas: 0 })
      const cfg = loadAppConfig(undefined, {}, {
        kafka: { brokers, topicPrefix },
        elasticsearch: { url: esUrl, indexPrefix: ip },
        indexer: { groupId: `${topicPrefix}indexer`, topics: ['sshd'], partitionsConcurrently, bulkSize, seal: { sliceMs: 1000 } }
      })
      await ensureTopics(admin, cfg.kafka, ['sshd', 'deadletter'])
      const topic = topicName(topicPrefix, 'sshd')
      topics.push(topic, topicName(topicPrefix, 'deadletter'))
      await produceEvents(kafka, topic, events)
      const t = await indexerRun(cfg, kafka, admin, es, topic, n, log)
      bestIndexer = Math.min(bestIndexer, t.acknowledgedMs)
      bestCommitted = Math.min(bestCommitted, t.committedMs)
      process.stdout.write(`  round ${r + 1}: bulk helper ${rate(n, h)} (indexer's request shape: ${rate(n, shaped)}), indexer ${rate(n, t.acknowledgedMs)} (committed: ${rate(n, t.committedMs)})\n`)
    }
    const ratio = bestHelper / bestIndexer
    process.stdout.write(`\n${'path'.padEnd(66)} ${'rate'.padStart(16)}\n`)
    process.stdout.write(`${'baseline: client.helpers.bulk alone (flushBytes 5 MB, concurrency 5)'.padEnd(66)} ${rate(n, bestHelper).padStart(16)}\n`)
    process.stdout.write(`${`same, with the indexer's request shape (${bulkSize} docs/request, ${partitionsConcurrently} in flight)`.padEnd(66)} ${rate(n, bestShaped).padStart(16)}\n`)
    process.stdout.write(`${`indexer, acknowledged (bulkSize ${bulkSize}, ${partitionsConcurrently} partition(s) at a time)`.padEnd(66)} ${rate(n, bestIndexer).padStart(16)}\n`)
    process.stdout.write(`${'indexer, committed (after sealing; seal.sliceMs 1000)'.padEnd(66)} ${rate(n, bestCommitted).padStart(16)}\n`)
    process.stdout.write(`\nratio indexer / bulk helper: ${ratio.toFixed(2)} (target ≥ 0.8: ${ratio >= 0.8 ? 'met' : 'not met'}); ` +
      `indexer / helper with the indexer's request shape: ${(bestShaped / bestIndexer).toFixed(2)}\n\n`)
  } finally {
    // The bench shares the node and broker with everything else: leave nothing behind.
    for (const p of prefixes) await dropPrefix(es, p)
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => {})
    await admin.disconnect()
    await es.close()
  }
}

/** The baseline: the same documents as the indexer writes them (with `event.ingested`), same ids and indices. */
async function helperRun (es: Client, prefix: string, events: readonly AuditEvent[], shape: { flushBytes?: number, concurrency?: number } = {}): Promise<number> {
  const ingested = new Date().toISOString()
  const docs = events.map(e => ({ ...e, event: { ...e.event, ingested } }))
  const t0 = performance.now()
  const stats = await es.helpers.bulk<AuditEvent>({
    datasource: docs,
    onDocument: d => ({ index: { _index: indexName(prefix, 'ssh', d['@timestamp']), _id: d.event.id } }),
    onDrop: d => { throw new Error(`bulk helper dropped a document: ${JSON.stringify(d.error)}`) },
    ...shape
  })
  const ms = performance.now() - t0
  if (stats.successful !== events.length) throw new Error(`bulk helper indexed ${stats.successful} of ${events.length}`)
  return ms
}

async function indexerRun (cfg: ReturnType<typeof loadAppConfig>, kafka: Kafka, admin: ReturnType<Kafka['admin']>, es: Client, topic: string, n: number,
  log: ReturnType<typeof createLogger>): Promise<{ acknowledgedMs: number, committedMs: number }> {
  const metrics = new Registry()
  const consumer = createConsumer(kafka, cfg.indexer.groupId, { maxBytes: 4 * cfg.indexer.maxBytesPerPartition, maxBytesPerPartition: cfg.indexer.maxBytesPerPartition })
  let t0: number | undefined
  consumer.on(consumer.events.GROUP_JOIN, () => { t0 ??= performance.now() })
  const running = await indexer.start(cfg.indexer, { log, signal: new AbortController().signal, metrics }, {
    consumer,
    producer: createProducer(kafka),
    es,
    topicPrefix: cfg.kafka.topicPrefix,
    indexPrefix: cfg.elasticsearch.indexPrefix
  })
  try {
    const indexed = async (): Promise<number> => (await (metrics.getSingleMetric('auditline_indexer_docs_indexed_total') as Counter).get()).values[0]?.value ?? 0
    const deadline = Date.now() + 600_000
    while (await indexed() < n) {
      if (Date.now() > deadline) throw new Error(`indexer acknowledged ${await indexed()} of ${n} in 10 min`)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    const acknowledgedMs = performance.now() - (t0 ?? 0)
    for (;;) {
      const ends = await admin.fetchTopicOffsets(topic)
      const [c] = await admin.fetchOffsets({ groupId: cfg.indexer.groupId, topics: [topic] })
      if (ends.every(p => BigInt(c?.partitions.find(x => x.partition === p.partition)?.offset ?? '-1') >= BigInt(p.high))) break
      if (Date.now() > deadline) throw new Error('indexer did not commit in 10 min')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    return { acknowledgedMs, committedMs: performance.now() - (t0 ?? 0) }
  } finally {
    await running.close()
  }
}
