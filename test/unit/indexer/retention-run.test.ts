import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { run, validate, type RetentionDeps, type RetentionStore, type Publish } from '../../../indexer/retention/run.ts'
import { ACTION_DONE, ACTION_INTENT } from '../../../indexer/retention/record.ts'
import { assertEvent, verifyEventHash, type AuditEvent } from '../../../lib/ecs.ts'
import { isAuditError } from '../../../lib/errors.ts'
import { createLogger } from '../../../lib/log.ts'

const cfg = validate({ classes: { ssh: 90, stats: 400 } })
const NOW = new Date('2027-01-01T00:00:00Z')

/** An Elasticsearch stand-in that logs every call in order, together with the records produced. */
class FakeCluster {
  readonly indices = new Map<string, { uuid: string, docs: number }>()
  readonly calls: string[] = []
  failDelete = 0
  constructor (entries: Record<string, number>) {
    let n = 0
    for (const [name, docs] of Object.entries(entries)) this.indices.set(name, { uuid: `uuid-${n++}`, docs })
  }

  store (): RetentionStore {
    return {
      list: async (pattern) => {
        const p = pattern.replace(/\*$/, '')
        return [...this.indices].filter(([i]) => i.startsWith(p)).map(([index, v]) => ({ index, uuid: v.uuid, status: 'open' }))
      },
      count: async (index) => this.indices.get(index)?.docs,
      uuidOf: async (index) => this.indices.get(index)?.uuid,
      delete: async (index) => {
        if (this.failDelete > 0) { this.failDelete--; throw new Error('cluster said no') }
        this.calls.push(`delete ${index}`)
        return this.indices.delete(index) ? 'deleted' : 'not_found'
      }
    }
  }
}

class FakeKafka {
  readonly sent: AuditEvent[] = []
  readonly raw: string[] = []
  fail = 0
  constructor (private readonly cluster: FakeCluster) {}
  publish: Publish = async (events) => {
    if (this.fail > 0) { this.fail--; throw new Error('kafka did not acknowledge') }
    for (const e of events) {
      this.sent.push(e)
      this.raw.push(JSON.stringify(e))
      this.cluster.calls.push(`record ${e.event.action} ${String(e.retention?.index)} #${e.event.sequence}`)
    }
  }
}

describe('retention: executor (fake cluster and Kafka)', () => {
  let dir: string
  const quiet = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const depsOf = (cluster: FakeCluster, kafka: FakeKafka | undefined, over: Partial<RetentionDeps> = {}): RetentionDeps => ({
    store: cluster.store(),
    ...(kafka === undefined ? {} : { publish: kafka.publish }),
    indexPrefix: 'auditline',
    host: 'indexer-1',
    stateDir: dir,
    now: () => NOW,
    log: quiet,
    metrics: new Registry(),
    ...over
  })

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-retention-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('records each deletion before and after it, with gap-free sequence numbers, and keeps what has not expired', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 12, 'auditline-ssh-2026.12.30': 3, 'auditline-stats-2025.01.01': 7, 'auditline-custom-2000.01.01': 1, 'auditline-ssh-2026.02.01': 0 })
    const kafka = new FakeKafka(cluster)
    const report = await run(cfg, depsOf(cluster, kafka))
    assert.deepEqual(cluster.calls, [
      'record retention_delete_index auditline-stats-2025.01.01 #0',
      'delete auditline-stats-2025.01.01',
      'record retention_index_deleted auditline-stats-2025.01.01 #1',
      'record retention_delete_index auditline-ssh-2026.01.01 #2',
      'delete auditline-ssh-2026.01.01',
      'record retention_index_deleted auditline-ssh-2026.01.01 #3',
      'record retention_delete_index auditline-ssh-2026.02.01 #4',
      'delete auditline-ssh-2026.02.01',
      'record retention_index_deleted auditline-ssh-2026.02.01 #5'
    ])
    assert.deepEqual([...cluster.indices.keys()].sort(), ['auditline-custom-2000.01.01', 'auditline-ssh-2026.12.30'])
    assert.deepEqual(report.expired.map(e => [e.index, e.documents, e.result]), [
      ['auditline-stats-2025.01.01', 7, 'deleted'], ['auditline-ssh-2026.01.01', 12, 'deleted'], ['auditline-ssh-2026.02.01', 0, 'deleted']
    ])
    assert.deepEqual(report.kept, { not_expired: 1, no_policy: 1, not_daily: 0 })
    assert.deepEqual(report.unmanaged, ['auditline-custom-2000.01.01'])

    for (const e of kafka.sent) {
      assertEvent(e)
      assert.ok(verifyEventHash(e).ok, 'the record carries a valid hash')
      assert.equal(e.auditline.class, 'api')
      assert.equal(e.auditline.stream, 'indexer-1/retention')
      assert.equal(e['@timestamp'], NOW.toISOString())
    }
    const [intent, done] = kafka.sent as [AuditEvent, AuditEvent]
    assert.equal(intent.event.action, ACTION_INTENT)
    assert.equal(intent.event.outcome, 'unknown')
    assert.deepEqual(intent.retention, {
      index: 'auditline-stats-2025.01.01',
      index_uuid: 'uuid-2',
      class: 'stats',
      period_days: 400,
      policy: 'retention.classes.stats=400d',
      index_day: '2025-01-01',
      expired_at: '2026-02-06T00:00:00.000Z',
      documents: 7
    })
    assert.equal(done.event.action, ACTION_DONE)
    assert.equal(done.event.outcome, 'success')
    assert.equal(done.retention?.result, 'deleted')
    assert.equal(done.retention?.intent_id, intent.event.id)
    assert.match(done.event.reason ?? '', /^Deleted index auditline-stats-2025\.01\.01 \(stats events of 2025-01-01, 7 documents\): retention\.classes\.stats is 400 days/)

    // The next run continues the stream where this one ended.
    cluster.indices.set('auditline-ssh-2026.03.01', { uuid: 'uuid-9', docs: 1 })
    await run(cfg, depsOf(cluster, kafka))
    assert.deepEqual(kafka.sent.map(e => e.event.sequence), [0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('deletes nothing when Kafka does not acknowledge the record, and the next run sends the identical record first', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5, 'auditline-ssh-2026.01.02': 6 })
    const kafka = new FakeKafka(cluster)
    kafka.fail = 1
    await assert.rejects(run(cfg, depsOf(cluster, kafka, { now: () => NOW })), (err: unknown) => /kafka did not acknowledge/.test(String(err)))
    assert.equal(cluster.indices.size, 2, 'no deletion without its record')
    assert.equal(kafka.sent.length, 0)

    // A later run, a later clock: the record in flight is still sent exactly as it was first built.
    const later = new Date(NOW.getTime() + 3_600_000)
    const report = await run(cfg, depsOf(cluster, kafka, { now: () => later }))
    assert.equal(kafka.sent[0]?.['@timestamp'], NOW.toISOString())
    assert.deepEqual(kafka.sent.map(e => [e.event.action, e.event.sequence]), [
      [ACTION_INTENT, 0], [ACTION_DONE, 1], [ACTION_INTENT, 2], [ACTION_DONE, 3]
    ])
    assert.equal(report.recovered?.index, 'auditline-ssh-2026.01.01')
    assert.deepEqual(report.expired.map(e => e.index), ['auditline-ssh-2026.01.02'])
    assert.equal(cluster.indices.size, 0)
  })

  it('after a failed deletion, the next run deletes first and records the completion under the next number', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5 })
    const kafka = new FakeKafka(cluster)
    cluster.failDelete = 1
    await assert.rejects(run(cfg, depsOf(cluster, kafka)), /cluster said no/)
    assert.deepEqual(kafka.sent.map(e => e.event.action), [ACTION_INTENT], 'the intent is recorded although the deletion failed')
    const first = kafka.raw[0]
    await run(cfg, depsOf(cluster, kafka))
    assert.equal(kafka.raw[1], first, 'the intent is re-sent byte for byte (same id, sequence and hash)')
    assert.deepEqual(kafka.sent.map(e => [e.event.action, e.event.sequence]), [[ACTION_INTENT, 0], [ACTION_INTENT, 0], [ACTION_DONE, 1]])
    assert.equal(cluster.indices.size, 0)
  })

  it('re-sends a completion record Kafka did not acknowledge, without deleting again', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5 })
    const kafka = new FakeKafka(cluster)
    const publish = kafka.publish
    let n = 0
    kafka.publish = async (events) => { if (n++ === 1) throw new Error('lost acknowledgement'); await publish(events) }
    await assert.rejects(run(cfg, depsOf(cluster, kafka)), /lost acknowledgement/)
    assert.equal(cluster.indices.size, 0)
    await run(cfg, depsOf(cluster, kafka))
    assert.deepEqual(cluster.calls, [
      'record retention_delete_index auditline-ssh-2026.01.01 #0',
      'delete auditline-ssh-2026.01.01',
      'record retention_index_deleted auditline-ssh-2026.01.01 #1'
    ])
  })

  it('does not delete an index re-created under the same name since it was planned, and records the planned one as gone', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5 })
    const kafka = new FakeKafka(cluster)
    cluster.failDelete = 1
    await assert.rejects(run(cfg, depsOf(cluster, kafka)))
    // Deleted by someone else, then re-created by a late event: a new uuid.
    cluster.indices.set('auditline-ssh-2026.01.01', { uuid: 'uuid-new', docs: 1 })
    const report = await run(cfg, depsOf(cluster, kafka))
    assert.equal(report.recovered?.result, 'not_found')
    const done = kafka.sent.find(e => e.event.action === ACTION_DONE)
    assert.equal(done?.retention?.result, 'not_found')
    assert.match(done?.event.reason ?? '', /already gone/)
    // The re-created index is a new index of an expired day: planned and recorded on its own.
    assert.deepEqual(report.expired.map(e => e.index), ['auditline-ssh-2026.01.01'])
    assert.notEqual(kafka.sent[kafka.sent.length - 1]?.event.id, done?.event.id)
    assert.equal(kafka.sent[kafka.sent.length - 1]?.retention?.index_uuid, 'uuid-new')
  })

  it('a dry run reports document counts and touches nothing', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5, 'auditline-ssh-2026.12.31': 1 })
    const report = await run(cfg, depsOf(cluster, undefined), { dryRun: true })
    assert.deepEqual(report.expired.map(e => [e.index, e.documents, e.result]), [['auditline-ssh-2026.01.01', 5, undefined]])
    assert.equal(cluster.indices.size, 2)
    assert.deepEqual(await readdir(dir), [])
  })

  it('writes no state when there is nothing to delete', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.12.31': 1 })
    const report = await run(cfg, depsOf(cluster, new FakeKafka(cluster)))
    assert.deepEqual(report.expired, [])
    assert.deepEqual(await readdir(dir), [])
  })

  it('refuses to run while another live process holds the lock, and takes over a dead one\'s', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5 })
    const kafka = new FakeKafka(cluster)
    const lock = join(dir, 'indexer-1.retention.lock')
    await writeFile(lock, String(process.pid))
    await assert.rejects(run(cfg, depsOf(cluster, kafka)), (err: unknown) => isAuditError(err, 'AUD_ERR_RETENTION_BUSY'))
    assert.equal(cluster.indices.size, 1)
    await writeFile(lock, '2147483646') // no such process
    await run(cfg, depsOf(cluster, kafka))
    assert.equal(cluster.indices.size, 0)
    assert.deepEqual((await readdir(dir)).sort(), ['indexer-1.retention.json'], 'the lock is released')
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'indexer-1.retention.json'), 'utf8')), { v: 1, stream: 'indexer-1/retention', next: 2, pending: null })
  })

  it('refuses a checkpoint it cannot read rather than guess the sequence', async () => {
    const cluster = new FakeCluster({ 'auditline-ssh-2026.01.01': 5 })
    await writeFile(join(dir, 'indexer-1.retention.json'), '{"v":1,"stream":"indexer-1/retention","next":"7"}')
    await assert.rejects(run(cfg, depsOf(cluster, new FakeKafka(cluster))), (err: unknown) => isAuditError(err, 'AUD_ERR_RETENTION_STATE'))
    assert.equal(cluster.indices.size, 1)
  })
})
