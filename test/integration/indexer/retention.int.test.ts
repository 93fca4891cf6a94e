import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Client } from '@elastic/elasticsearch'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { createKey } from '../../../lib/apikey.ts'
import { topicName } from '../../../lib/topics.ts'
import { verifyEventHash, type AuditEvent } from '../../../lib/ecs.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, runRetention, startIndex, startServe } from '../../../cli/pipeline.ts'
import { ACTION_DONE, ACTION_INTENT } from '../../../indexer/retention/record.ts'
import type { Running } from '../../../lib/component.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { sshLogin } from '../../helpers/audit-events.ts'

/** The injected clock: retention runs "on" 2027-01-01 00:00 UTC. */
const NOW = new Date('2027-01-01T00:00:00Z')

/** Daily indices of several classes and days → documents in each, and whether retention at NOW deletes it. */
const INDICES: Array<{ suffix: string, docs: number, expired: boolean }> = [
  { suffix: 'ssh-2026.09.01', docs: 3, expired: true }, // + 1 d + 90 d = 2026-12-01 ≤ NOW
  { suffix: 'ssh-2026.10.02', docs: 2, expired: true }, // + 1 d + 90 d = 2027-01-01 = NOW: the boundary
  { suffix: 'ssh-2026.10.03', docs: 4, expired: false }, // due 2027-01-02
  { suffix: 'ftp-2026.06.01', docs: 5, expired: true },
  { suffix: 'db-2026.06.01', docs: 1, expired: true }, // 180 d: due 2026-11-29
  { suffix: 'db-2026.08.01', docs: 2, expired: false }, // due 2027-01-29
  { suffix: 'panel-2026.06.01', docs: 2, expired: false }, // 365 d
  { suffix: 'stats-2025.11.01', docs: 2, expired: true }, // 400 d: due 2026-12-07
  { suffix: 'stats-2025.12.01', docs: 1, expired: false }, // due 2027-01-06
  { suffix: 'custom-2020.01.01', docs: 1, expired: false } // no policy for this class
]

describe('retention against the real Elasticsearch and Kafka (injected clock)', function () {
  this.timeout(90_000)
  const { topicPrefix, indexPrefix } = uniquePrefix()
  const log = createLogger({ level: 'warn', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
  let dir: string
  let es: Client
  let cfg: AppConfig
  let key: Awaited<ReturnType<typeof createKey>>
  const stop: Running[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-retention-int-'))
    es = new Client({ node: stack().esUrl })
    key = await createKey()
    cfg = loadAppConfig(undefined, {}, {
      stateDir: dir,
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      indexer: { groupId: `${topicPrefix}indexer`, topics: ['api'], seal: { sliceMs: 300 } },
      retention: { host: 'indexer-1', intervalMs: 0 },
      queryApi: { port: 0, apiKeys: [{ id: key.id, hash: key.hash, roles: ['auditor'], owner: 'dpo' }] }
    })
    await init(cfg, ctx)
    // Documents go in directly (the templates apply): the indexer's own path is covered by the other tests.
    let n = 0
    const operations = INDICES.flatMap(({ suffix, docs }) => Array.from({ length: docs }, () => {
      const e = sshLogin(n++)
      return [{ index: { _index: `${indexPrefix}-${suffix}`, _id: e.event.id } }, suffix.startsWith('stats') ? { '@timestamp': e['@timestamp'], site: 'www.example.test', hits: 1 } : e]
    }).flat())
    const res = await es.bulk({ operations, refresh: true })
    assert.equal(res.errors, false)
  })
  after(async () => {
    for (const r of stop.reverse()) await r.close()
    await es.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function existing (): Promise<string[]> {
    const rows = await es.cat.indices({ index: `${indexPrefix}-*`, format: 'json', h: ['index'] })
    return rows.map(r => (r.index ?? '').slice(indexPrefix.length + 1)).filter(i => !i.startsWith('api-')).sort()
  }

  it('deletes the expired daily indices, keeps the others, and records each deletion so that it is searchable', async () => {
    const expired = INDICES.filter(i => i.expired)
    const kept = INDICES.filter(i => !i.expired).map(i => i.suffix).sort()

    // A dry run names them, with their document counts, and changes nothing.
    const dry = await runRetention(cfg, ctx, { dryRun: true, now: () => NOW })
    assert.deepEqual(dry.expired.map(e => [e.index, e.documents]).sort(), expired.map(i => [`${indexPrefix}-${i.suffix}`, i.docs]).sort())
    assert.equal((await existing()).length, INDICES.length)

    const report = await runRetention(cfg, ctx, { now: () => NOW })
    assert.deepEqual(report.expired.map(e => e.index).sort(), expired.map(i => `${indexPrefix}-${i.suffix}`).sort())
    assert.ok(report.expired.every(e => e.result === 'deleted'))
    assert.deepEqual(report.unmanaged, [`${indexPrefix}-custom-2020.01.01`])
    assert.deepEqual(await existing(), kept, 'exactly the expired indices are gone')

    // Two records per deletion (intent before, completion after), one gap-free stream, in Kafka.
    const records = values<AuditEvent>(await consumeUntil([topicName(topicPrefix, 'api')], all => all.length >= 2 * expired.length, 20_000))
    assert.equal(records.length, 2 * expired.length)
    assert.deepEqual(records.map(e => e.event.sequence), Array.from({ length: 2 * expired.length }, (_, i) => i))
    for (const e of records) {
      assert.ok(verifyEventHash(e).ok)
      assert.equal(e.auditline.stream, 'indexer-1/retention')
      assert.equal(e['@timestamp'], NOW.toISOString())
    }
    for (const i of expired) {
      const name = `${indexPrefix}-${i.suffix}`
      const [intent, done] = [ACTION_INTENT, ACTION_DONE].map(a => records.find(e => e.event.action === a && e.retention?.index === name))
      assert.ok(intent !== undefined && done !== undefined, `both records of ${name}`)
      assert.ok(intent.event.sequence < done.event.sequence, 'the intent is recorded before the deletion')
      assert.equal(intent.retention?.documents, i.docs)
      assert.equal(done.retention?.result, 'deleted')
    }
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'retention', 'indexer-1.retention.json'), 'utf8')), { v: 1, stream: 'indexer-1/retention', next: 2 * expired.length, pending: null })

    // Through the real indexer into Elasticsearch, and out of the query API.
    stop.push(await startIndex(cfg, ctx))
    const api = await startServe(cfg, ctx)
    stop.push(api)
    const url = `${api.url}/v1/events?event.action=${ACTION_INTENT}&event.action=${ACTION_DONE}&size=50&order=asc&reason=retention%20proof`
    const page = await waitFor('the deletion records to be searchable', async () => {
      const res = await fetch(url, { headers: { authorization: `ApiKey ${key.key}` } })
      assert.equal(res.status, 200)
      const body = await res.json() as { events: AuditEvent[], total: number }
      return body.total === 2 * expired.length ? body : undefined
    }, 45_000, 500)
    const sshDone = page.events.find(e => e.event.action === ACTION_DONE && e.retention?.index === `${indexPrefix}-ssh-2026.10.02`)
    assert.deepEqual(sshDone?.retention, {
      index: `${indexPrefix}-ssh-2026.10.02`,
      index_uuid: sshDone?.retention?.index_uuid,
      class: 'ssh',
      period_days: 90,
      policy: 'retention.classes.ssh=90d',
      index_day: '2026-10-02',
      expired_at: '2027-01-01T00:00:00.000Z',
      documents: 2,
      result: 'deleted',
      intent_id: page.events.find(e => e.event.action === ACTION_INTENT && e.retention?.index === `${indexPrefix}-ssh-2026.10.02`)?.event.id
    })
    // The mapped fields answer an auditor's question directly: which connection data was deleted, and when.
    await es.indices.refresh({ index: `${indexPrefix}-api-*` })
    const ssh = await es.search({ index: `${indexPrefix}-api-*`, size: 0, query: { bool: { filter: [{ term: { 'event.action': ACTION_DONE } }, { term: { 'retention.class': 'ssh' } }] } }, aggs: { docs: { sum: { field: 'retention.documents' } } } })
    assert.equal((ssh.hits.total as { value: number }).value, 2)
    assert.equal((ssh.aggregations?.docs as { value: number }).value, 5)

    // A second run finds nothing more to delete, and records nothing.
    const again = await runRetention(cfg, ctx, { now: () => NOW })
    assert.deepEqual(again.expired, [])
  })
})
