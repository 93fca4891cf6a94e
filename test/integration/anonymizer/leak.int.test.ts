/**
 * The privacy promise, tested end to end: canary visitor addresses in every position a web log can hold
 * them, in every notation, go through the real collector, Kafka, the anonymizer stage, statistics and the
 * indexer. None may be found — in any notation — in the anonymized topic, the statistics topic, the dead-letter
 * topic, Elasticsearch, the query API or the service logs.
 */
import assert from 'node:assert/strict'
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { createKey } from '../../../lib/apikey.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { startAll, startIndex, startServe } from '../../../cli/pipeline.ts'
import { topicName } from '../../../lib/topics.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil } from '../../helpers/kafka.ts'
import { CANARY_LOG_FORMAT, canaryLine, findCanary } from '../../helpers/behaviour-canaries.ts'

describe('privacy: no canary visitor address survives anywhere', function () {
  this.timeout(300_000)
  let dir: string
  let running: Awaited<ReturnType<typeof startAll>> | undefined
  const serviceLog: string[] = []
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-leak-')) })
  after(async () => {
    await running?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('finds none of the canaries in the anonymized topic, statistics, dead letters, index, API or service log', async () => {
    const N = Number(process.env.LEAK_LINES ?? 100_000)
    const access = join(dir, 'access.log')
    await writeFile(access, '')
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const key = await createKey()
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'debug' },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'cp'), host: 'web-1', pollMs: 20, batchLines: 5000, sources: [{ name: 'shop', type: 'web-access', format: 'custom', paths: [access], options: { logFormat: CANARY_LOG_FORMAT } }] },
      anonymizer: { groupId: `${topicPrefix}anon` },
      stats: { groupId: `${topicPrefix}stats` },
      indexer: { groupId: `${topicPrefix}indexer` },
      queryApi: { port: 0, apiKeys: [{ id: key.id, hash: key.hash, roles: ['admin'], owner: 'leak-test' }] }
    })
    const log = createLogger({ level: 'debug', destination: new Writable({ write (c, _e, cb) { serviceLog.push(String(c)); cb() } }) })
    const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
    running = await startAll(cfg, ctx)

    const now = new Date()
    const lines: string[] = []
    for (let i = 0; i < N; i++) lines.push(canaryLine(i, now, 'shop.example'))
    // Every generated line holds at least one canary: the test would be empty otherwise.
    assert.ok(lines.every(l => findCanary(l) !== undefined))
    await appendFile(access, lines.join('\n') + '\n')
    await running.collect.drained()

    const anonTopic = topicName(topicPrefix, 'webAnon')
    const anon = await consumeUntil([anonTopic], all => all.length >= N, 120_000)
    assert.equal(anon.length, N, 'every line came out of the anonymizer')
    // Closing the pipeline makes the statistics stage emit every open bucket; a fresh indexer and API then
    // index and serve them, so the statistics reach Elasticsearch whatever the time of day.
    await running.close()
    running = undefined
    const statsTopic = topicName(topicPrefix, 'stats')
    const stats = await consumeUntil([statsTopic], all => all.length >= 2, 60_000)
    assert.ok(stats.length >= 2, 'the statistics stage emitted hour and day documents')
    const index = await startIndex(cfg, ctx)
    const served = await startServe(cfg, ctx)
    try {
      await waitFor('statistics documents in Elasticsearch', async () => {
        await fetch(`${stack().esUrl}/${indexPrefix}-stats-*/_refresh`, { method: 'POST' })
        const c = await (await fetch(`${stack().esUrl}/${indexPrefix}-stats-*/_count`)).json() as { count?: number }
        return (c.count ?? 0) >= 2 ? true : undefined
      }, 60_000, 500)

      const leaks: string[] = []
      for (const m of [...anon, ...stats]) {
        const hit = findCanary(m.message.value?.toString() ?? '') ?? findCanary(m.message.key?.toString() ?? '')
        if (hit !== undefined) leaks.push(`${m.topic}: ${hit}`)
      }
      const others = await consumeUntil([topicName(topicPrefix, 'deadletter'), topicName(topicPrefix, 'api')], () => false, 5_000)
      for (const m of others) {
        const hit = findCanary(m.message.value?.toString() ?? '') ?? findCanary(m.message.key?.toString() ?? '')
        if (hit !== undefined) leaks.push(`${m.topic}: ${hit}`)
      }

      // Elasticsearch: every document of the deployment's indices.
      await fetch(`${stack().esUrl}/${indexPrefix}*/_refresh`, { method: 'POST' })
      const docs = await (await fetch(`${stack().esUrl}/${indexPrefix}*/_search?size=10000`)).text()
      assert.match(docs, /"hits":\{"total"/)
      const esHit = findCanary(docs)
      if (esHit !== undefined) leaks.push(`elasticsearch: ${esHit}`)

      // The API, asked directly for the canary (after the topics and the index were searched: the API records
      // these searches, with their filters, as audit events of its own).
      for (const q of ['/v1/events?size=500&case=LEAK-1', '/v1/events?q=203.0.113.77&case=LEAK-1', '/v1/events?source.ip=203.0.113.77&case=LEAK-1']) {
        const res = await fetch(`${served.url}${q}`, { headers: { authorization: `ApiKey ${key.key}` } })
        const body = await res.text()
        assert.equal(res.status, 200, `${q} answered ${res.status}: ${body}; service log errors: ${serviceLog.filter(l => /"level":50/.test(l)).join('').slice(0, 4000)}`)
        const hit = findCanary(body)
        if (hit !== undefined) leaks.push(`api ${q}: ${hit}`)
      }

      const logHit = findCanary(serviceLog.join(''))
      if (logHit !== undefined) leaks.push(`service log: ${logHit}`)
      assert.deepEqual(leaks, [])
    } finally {
      await served.close()
      await index.close()
    }

    // The anonymized records are still useful: addresses of the right family, visitor ids, the site.
    const records = anon.map(m => JSON.parse(m.message.value?.toString() ?? '{}') as { event: { sequence: number }, source: { ip?: string }, web: { site: string, visitor_id: string } })
    const sample = records.find(r => r.event.sequence % 10 === 1) ?? records[0] ?? { source: {}, web: { site: '', visitor_id: '' } }
    assert.match(sample.source.ip ?? '', /:/, 'an IPv6 client stays IPv6')
    assert.equal(sample.web.site, 'shop.example')
    await waitFor('the service log to hold the pipeline\'s own lines', async () => serviceLog.length > 0 ? true : undefined, 1000)
  })
})
