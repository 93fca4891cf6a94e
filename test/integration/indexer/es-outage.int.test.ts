import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel } from 'kafkajs'
import { Registry, type Counter } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { topicName } from '../../../lib/topics.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startIndex } from '../../../cli/pipeline.ts'
import type { Running } from '../../../lib/component.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { committedToEnd, messagesIn, produceEvents, sshLogin } from '../../helpers/audit-events.ts'
import { FreezableProxy } from '../../helpers/freezable-proxy.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const PAUSE_MS = 30_000
const N = 3000

/**
 * How Elasticsearch is made unavailable:
 * - `sigstop`: the node's server JVM is stopped (SIGSTOP) and continued (SIGCONT) — the real thing. Only on a stack
 *   this test run started itself (CI: `npm test` on a fresh machine), because on a stack shared with other runs
 *   it would stall their tests too, and their `deploy/local up` would take the stopped node for dead and replace
 *   the whole stack under everyone.
 * - `proxy`: the indexer talks to the node through a proxy that freezes (test/helpers/freezable-proxy.ts): to the
 *   indexer the same as a stopped process (no answers, no errors, requests already sent executed late), while the
 *   node keeps serving everyone else. Used on a reused or external stack.
 * `AUDITLINE_TEST_ES_OUTAGE=sigstop|proxy` overrides the choice.
 */
function outageMode (): 'sigstop' | 'proxy' {
  const forced = process.env.AUDITLINE_TEST_ES_OUTAGE
  if (forced === 'sigstop' || forced === 'proxy') return forced
  const external = (process.env.ELASTICSEARCH_URL ?? '') !== ''
  return !external && / started in /.test(stack().origin) ? 'sigstop' : 'proxy'
}

/** The Elasticsearch server JVM of the local stack: state.json records the launcher's pid, the server is its child. */
function localElasticsearchServer (): number {
  if ((process.env.ELASTICSEARCH_URL ?? '') !== '') throw new Error('SIGSTOP needs the local stack, not ELASTICSEARCH_URL')
  const state = JSON.parse(readFileSync(join(ROOT, '.cache', 'stack', 'state.json'), 'utf8')) as { elasticsearch?: { pid?: number, httpPort?: number } }
  const launcher = state.elasticsearch?.pid
  if (launcher === undefined || new URL(stack().esUrl).port !== String(state.elasticsearch?.httpPort)) throw new Error('the stack under test is not the one in .cache/stack/state.json')
  const children = execFileSync('pgrep', ['-P', String(launcher)], { encoding: 'utf8' }).trim().split('\n').filter(s => s !== '').map(Number)
  const server = children.find(pid => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('org.elasticsearch.bootstrap.Elasticsearch'))
  if (server === undefined) throw new Error(`no Elasticsearch server JVM among the children of ${launcher}`)
  return server
}

describe('indexer: Elasticsearch unavailable for 30 s in the middle of a stream', function () {
  this.timeout(120_000)
  const { topicPrefix, indexPrefix } = uniquePrefix()
  const groupId = `${topicPrefix}indexer`
  const log = createLogger({ level: 'error', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const metrics = new Registry()
  const ctx = { log, signal: new AbortController().signal, metrics }
  let running: Running | undefined
  let es: Client
  let paused: number | undefined
  let watchdog: number | undefined
  let proxy: FreezableProxy | undefined
  const resume = (): void => {
    if (paused !== undefined) process.kill(paused, 'SIGCONT')
    paused = undefined
  }

  before(async () => { es = new Client({ node: stack().esUrl }) })
  after(async () => {
    resume()
    proxy?.thaw()
    if (watchdog !== undefined) try { process.kill(-watchdog, 'SIGKILL') } catch {}
    process.off('exit', resume)
    await running?.close()
    await proxy?.close()
    await es.close()
  })

  it('indexes every event exactly once, with no dead letters, after the node is unavailable for 30 s and back', async () => {
    const mode = outageMode()
    let indexerUrl = stack().esUrl
    if (mode === 'proxy') {
      const target = new URL(stack().esUrl)
      proxy = new FreezableProxy({ host: target.hostname, port: Number(target.port) })
      indexerUrl = await proxy.start()
    }
    process.stdout.write(`      (outage by ${mode === 'sigstop' ? 'SIGSTOP/SIGCONT of the node\'s JVM' : 'a freezing proxy in front of the shared node'})\n`)
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      // Short request timeouts: a request to the stopped node fails after 2 s and is retried, as a hung one would be.
      elasticsearch: { url: indexerUrl, indexPrefix, requestTimeoutMs: 2000 },
      indexer: { groupId, topics: ['sshd'], maxRetryBackoffMs: 2000, bulkSize: 200, seal: { sliceMs: 300 } },
      retention: { intervalMs: 0 }
    })
    const kafka = new Kafka({ clientId: 'outage-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
    const topic = topicName(topicPrefix, 'sshd')
    const index = `${indexPrefix}-ssh-*`
    const count = async (): Promise<number> => {
      await es.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true })
      return (await es.count({ index, ignore_unavailable: true, allow_no_indices: true })).count
    }
    const events = Array.from({ length: N }, (_, i) => sshLogin(i))
    await init(cfg, ctx)
    running = await startIndex(cfg, ctx)

    // First third: indexed while the node is up.
    await produceEvents(kafka, topic, events.slice(0, 1000))
    await waitFor('the first 1000 events to be indexed', async () => (await count()) === 1000 ? true : undefined, 30_000)

    // Stop the node (no answers, no errors: the worst case for a client). For SIGSTOP, a watchdog continues the
    // JVM even if this process dies, so that a failed run never leaves the node stopped.
    if (mode === 'sigstop') {
      const pid = localElasticsearchServer()
      const dog = spawn('sh', ['-c', `sleep ${PAUSE_MS / 1000 + 15}; kill -CONT ${pid}`], { detached: true, stdio: 'ignore' })
      dog.unref()
      watchdog = dog.pid
      process.on('exit', resume)
      process.kill(pid, 'SIGSTOP')
      paused = pid
    } else {
      proxy?.freeze()
    }
    const stoppedAt = Date.now()
    // Second third: produced while Elasticsearch is unavailable, spread over the pause.
    for (let i = 0; i < 10; i++) {
      await produceEvents(kafka, topic, events.slice(1000 + i * 100, 1100 + i * 100))
      await new Promise(resolve => setTimeout(resolve, (PAUSE_MS - (Date.now() - stoppedAt)) / (10 - i) - 200))
    }
    await new Promise(resolve => setTimeout(resolve, Math.max(0, PAUSE_MS - (Date.now() - stoppedAt))))
    resume()
    proxy?.thaw()
    const retried = (await (metrics.getSingleMetric('auditline_indexer_retries_total') as Counter).get()).values[0]?.value ?? 0

    // Last third: after the node is back.
    await produceEvents(kafka, topic, events.slice(2000))
    await waitFor('all events to be indexed and committed', async () => (await count()) === N && await committedToEnd(kafka, groupId, topic) ? true : undefined, 60_000, 500)

    assert.equal(await count(), N, 'every event once: the ids are the events\' own, so a retried bulk overwrites')
    const ids = new Set((await es.search({ index, size: N + 10, _source: ['event.id'] })).hits.hits.map(h => h._id))
    assert.deepEqual(events.filter(e => !ids.has(e.event.id)).map(e => e.event.sequence), [], 'no event is missing')
    assert.equal(await messagesIn(kafka, topicName(topicPrefix, 'deadletter')), 0, 'an unavailable node is not the documents\' fault: no dead letters')
    assert.ok(retried > 0, 'the indexer saw the outage and retried')
    // Bulk requests the indexer gave up on were executed by the node afterwards, and overwrote nothing twice.
    if (proxy !== undefined) assert.ok(proxy.deliveredLate > 0, 'some requests were executed late, as by a continued process')
  })
})
