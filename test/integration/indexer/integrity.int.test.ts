/**
 * Tamper evidence on the real Elasticsearch node (#5): sshd events from real fixture lines go through Kafka and
 * the real indexer, which seals them; then documents and a checkpoint are tampered with directly in
 * Elasticsearch, and `auditline verify` (the CLI, as a child process) must name each change.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import type { Running } from '../../../lib/component.ts'
import { createLogger } from '../../../lib/log.ts'
import { createConsumer, createKafka, createProducer } from '../../../lib/kafka.ts'
import { createEsClient } from '../../../lib/elasticsearch.ts'
import { sealsIndexName } from '../../../lib/seal-template.ts'
import { topicName } from '../../../lib/topics.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { SealCheckpoint } from '../../../lib/seal.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, startIndex } from '../../../cli/pipeline.ts'
import { writeKeyPair, verifyDeployment } from '../../../cli/verify.ts'
import * as indexer from '../../../indexer/elasticsearch/run.ts'
import type { Finding } from '../../../indexer/verify.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { fixtureEvents } from '../../helpers/audit-events.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const log = createLogger({ level: 'silent' })
const ctx = (): { log: typeof log, signal: AbortSignal, metrics: Registry } => ({ log, signal: new AbortController().signal, metrics: new Registry() })

async function produce (producer: Producer, topic: string, events: AuditEvent[]): Promise<void> {
  await producer.send({ topic, acks: -1, messages: events.map(e => ({ key: e.auditline.stream, value: JSON.stringify(e) })) })
}

interface CliResult { code: number, findings: Finding[], summary: Record<string, unknown> }

/** `auditline verify` as a child process, configured through AUDITLINE_* variables only. */
function verifyCli (cfg: AppConfig, publicKey: string, args: string[]): Promise<CliResult> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUDITLINE_') && v !== undefined) env[k] = v
  Object.assign(env, {
    AUDITLINE_ELASTICSEARCH__URL: cfg.elasticsearch.url,
    AUDITLINE_ELASTICSEARCH__INDEX_PREFIX: cfg.elasticsearch.indexPrefix,
    AUDITLINE_KAFKA__BROKERS: cfg.kafka.brokers.join(','),
    AUDITLINE_KAFKA__TOPIC_PREFIX: cfg.kafka.topicPrefix
  })
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'verify', '--public-key', publicKey, ...args], { cwd: ROOT, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      try {
        const findings = stdout.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Finding)
        const summaryLine = stderr.split('\n').find(l => l.startsWith('{"summary"'))
        if (summaryLine === undefined) throw new Error(`no summary (exit ${code}): ${stderr}`)
        resolve({ code, findings, summary: (JSON.parse(summaryLine) as { summary: Record<string, unknown> }).summary })
      } catch (e) { reject(e) }
    })
  })
}

const named = (fs: Finding[]): string[] => fs.map(f => `${f.kind} ${f.index ?? ''} ${f.id ?? ''}`).sort()

describe('integrity: seals, tampering and auditline verify on the real Elasticsearch', function () {
  this.timeout(90_000)
  let dir: string
  let es: Client
  let kafka: Kafka
  let producer: Producer
  let keys: { privateFile: string, publicFile: string, keyId: string }
  const prefixes: string[] = []
  const running: Running[] = []

  function config (sliceMs: number): AppConfig {
    const { topicPrefix, indexPrefix } = uniquePrefix()
    prefixes.push(indexPrefix)
    return loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      indexer: { groupId: `${topicPrefix}indexer`, topics: ['sshd'], seal: { sliceMs, privateKeyFile: keys.privateFile } }
    }) as AppConfig
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-integrity-'))
    keys = await writeKeyPair(join(dir, 'seal-key'))
    es = new Client({ node: stack().esUrl })
    kafka = new Kafka({ clientId: 'auditline-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
    producer = kafka.producer()
    await producer.connect()
  })

  after(async () => {
    for (const r of running) await r.close().catch(() => {})
    await producer?.disconnect()
    for (const p of prefixes) await es.indices.delete({ index: `${p}-*,${sealsIndexName(p)}`, ignore_unavailable: true, allow_no_indices: true }).catch(() => {})
    await es?.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function sealedIds (cfg: AppConfig): Promise<{ ids: Set<string>, checkpoints: Array<SealCheckpoint & { _id: string }> }> {
    const index = sealsIndexName(cfg.elasticsearch.indexPrefix)
    await es.indices.refresh({ index, ignore_unavailable: true })
    const res = await es.search<SealCheckpoint>({ index, size: 100, sort: [{ seq: 'asc' }], ignore_unavailable: true })
    const checkpoints = res.hits.hits.map(h => ({ ...(h._source as SealCheckpoint), _id: h._id as string }))
    return { ids: new Set(checkpoints.flatMap(c => c.ids)), checkpoints }
  }

  it('seals every indexed event (replays included), names a changed, a deleted and a forged event, verifies an untouched range clean, and names a changed checkpoint', async () => {
    const cfg = config(500)
    await init(cfg, ctx())
    const events = await fixtureEvents(20)
    const topic = topicName(cfg.kafka.topicPrefix, 'sshd')
    await produce(producer, topic, events)
    running.push(await startIndex(cfg, ctx()))
    const first = await waitFor('all 20 events sealed', async () => {
      const s = await sealedIds(cfg)
      return events.every(e => s.ids.has(e.event.id)) ? s : undefined
    }, 30_000, 200)

    // A replay (the same Kafka messages again) overwrites the documents and seals them again under the same hashes.
    await produce(producer, topic, events)
    const second = await waitFor('the replay sealed', async () => {
      const s = await sealedIds(cfg)
      const again = s.checkpoints.slice(first.checkpoints.length).flatMap(c => c.ids)
      return events.every(e => again.includes(e.event.id)) ? s : undefined
    }, 30_000, 200)
    const index = first.checkpoints[0]?.index as string
    assert.equal(index, `${cfg.elasticsearch.indexPrefix}-ssh-2026.11.29`)
    await es.indices.refresh({ index })
    assert.equal((await es.count({ index })).count, 20, 'a replay does not duplicate')
    for (const cp of second.checkpoints) assert.equal(cp.key_id, keys.keyId)

    const clean = await verifyCli(cfg, keys.publicFile, [])
    assert.deepEqual(clean.findings, [])
    assert.equal(clean.code, 0)
    assert.equal(clean.summary.verified, 20)

    // Tamper directly in Elasticsearch: change a field, delete a document, insert a forged one.
    const changed = events[3] as AuditEvent
    const deleted = events[7] as AuditEvent
    await es.update({ index, id: changed.event.id, doc: { user: { name: 'someone-else' } } })
    await es.delete({ index, id: deleted.event.id })
    const real = (await es.get<AuditEvent>({ index, id: (events[0] as AuditEvent).event.id }))._source as AuditEvent
    // A well-formed event with a valid-looking id and a correct self-hash, back-dated to look indexed long ago.
    const forged = (await fixtureEvents(21))[20] as AuditEvent
    const forgedIngested = new Date(Date.parse(real.event.ingested as string) - 10_000).toISOString()
    await es.index({ index, id: forged.event.id, document: { ...forged, event: { ...forged.event, ingested: forgedIngested } }, refresh: true })

    const tampered = await verifyCli(cfg, keys.publicFile, ['--grace-ms', '1000'])
    assert.equal(tampered.code, 1)
    assert.deepEqual(named(tampered.findings), [
      `changed ${index} ${changed.event.id}`,
      `deleted ${index} ${deleted.event.id}`,
      `gap ${index} ${(events[8] as AuditEvent).event.id}`,
      `inserted ${index} ${forged.event.id}`
    ])
    const gap = tampered.findings.find(f => f.kind === 'gap')
    assert.deepEqual(gap?.sequence, { from: 7, to: 7 })
    assert.equal(gap?.stream, 'backend-1/auth')

    // An untouched range (events 10..19 by @timestamp) verifies clean, although its checkpoints also seal tampered ones.
    const range = ['--from', (events[10] as AuditEvent)['@timestamp'], '--to', (events[19] as AuditEvent)['@timestamp']]
    assert.ok(forged['@timestamp'] > (events[19] as AuditEvent)['@timestamp'], 'the forged event lies after the range')
    const untouched = await verifyCli(cfg, keys.publicFile, range)
    assert.deepEqual(untouched.findings, [])
    assert.equal(untouched.code, 0)
    const inRange = events.filter(e => e['@timestamp'] >= (events[10] as AuditEvent)['@timestamp'] && e['@timestamp'] <= (events[19] as AuditEvent)['@timestamp'])
    assert.ok(!inRange.includes(changed) && !inRange.includes(deleted))
    assert.equal(untouched.summary.verified, inRange.length)

    // A changed checkpoint (the first-round one sealing event 15) breaks its signature and the link from the next one.
    const at = second.checkpoints.findIndex(c => c.ids.includes((events[15] as AuditEvent).event.id))
    const cp = second.checkpoints[at] as SealCheckpoint & { _id: string }
    const next = second.checkpoints[at + 1] as SealCheckpoint & { _id: string }
    await es.update({ index: sealsIndexName(cfg.elasticsearch.indexPrefix), id: cp._id, doc: { to: '2030-01-01T00:00:00.000Z' }, refresh: true })
    const broken = await verifyCli(cfg, keys.publicFile, range)
    assert.equal(broken.code, 1)
    const chain = broken.findings.filter(f => f.kind === 'chain')
    assert.deepEqual(chain.map(f => f.id), [cp._id, next._id])
    assert.match(chain[0]?.detail ?? '', /signature does not verify/)
    assert.match(chain[1]?.detail ?? '', new RegExp(`is not the hash of checkpoint ${cp.seq}`))

    // Deleting the newest checkpoint leaves no broken link; the head recorded by the clean run exposes it.
    const headId = second.checkpoints[second.checkpoints.length - 1]?._id as string
    assert.equal(clean.summary.chain_head, second.checkpoints.length - 1)
    await es.delete({ index: sealsIndexName(cfg.elasticsearch.indexPrefix), id: headId, refresh: true })
    const cut = await verifyCli(cfg, keys.publicFile, [...range, '--head', `${String(clean.summary.chain_head)}:${String(clean.summary.chain_head_hash)}`])
    assert.equal(cut.code, 1)
    assert.ok(cut.findings.some(f => f.kind === 'chain' && f.id === headId && /cut short/.test(f.detail)), JSON.stringify(cut.findings))
  })

  it('never commits what it has not sealed: an indexer that dies before sealing leaves its events to the next one, which seals them', async () => {
    const cfg = config(500)
    await init(cfg, ctx())
    const events = await fixtureEvents(10)
    await produce(producer, topicName(cfg.kafka.topicPrefix, 'sshd'), events)

    // The first indexer seals only every 10 minutes; it indexes everything and then dies (no close, no seal).
    const k = createKafka(cfg.kafka, log)
    const consumer = createConsumer(k, cfg.indexer.groupId)
    const dying = createProducer(k)
    const dyingEs = createEsClient(cfg.elasticsearch)
    await indexer.start({ ...cfg.indexer, seal: { ...cfg.indexer.seal, sliceMs: 600_000 } }, ctx(), { consumer, producer: dying, es: dyingEs, topicPrefix: cfg.kafka.topicPrefix, indexPrefix: cfg.elasticsearch.indexPrefix })
    const index = `${cfg.elasticsearch.indexPrefix}-ssh-2026.11.29`
    await waitFor('10 documents indexed', async () => {
      await es.indices.refresh({ index, ignore_unavailable: true })
      return (await es.count({ index, ignore_unavailable: true })).count === 10 ? true : undefined
    }, 30_000, 200)
    await consumer.disconnect()
    await dying.disconnect()
    await dyingEs.close()

    const opts = { publicKeys: [createPublicKey(await readFile(keys.publicFile, 'utf8'))], graceMs: 0 }
    const before: Finding[] = []
    await verifyDeployment(cfg, opts, f => { before.push(f) }, log)
    assert.deepEqual(before.map(f => f.kind), Array(10).fill('unsealed'))
    const admin = k.admin()
    await admin.connect()
    try {
      const committed = await admin.fetchOffsets({ groupId: cfg.indexer.groupId, topics: [topicName(cfg.kafka.topicPrefix, 'sshd')] })
      assert.ok(committed.every(t => t.partitions.every(p => p.offset === '-1')), 'nothing was committed before sealing')

      running.push(await startIndex(cfg, ctx()))
      const after = await waitFor('verify clean after the restart', async () => {
        const fs: Finding[] = []
        const s = await verifyDeployment(cfg, opts, f => { fs.push(f) }, log)
        return fs.length === 0 ? s : undefined
      }, 30_000, 300)
      assert.equal(after.verified, 10)
      await waitFor('offsets committed after sealing', async () => {
        const c = await admin.fetchOffsets({ groupId: cfg.indexer.groupId, topics: [topicName(cfg.kafka.topicPrefix, 'sshd')] })
        const total = c.flatMap(t => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)
        return total === 10 ? true : undefined
      }, 10_000, 200)
    } finally {
      await admin.disconnect()
    }
  })
})
