import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { topicName } from '../../../lib/topics.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, startIndex } from '../../../cli/pipeline.ts'
import type { Running } from '../../../lib/component.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { committedToEnd, messagesIn, produceEvents, sshLogin } from '../../helpers/audit-events.ts'

const N = 3000

describe('indexer: replaying a Kafka range', function () {
  this.timeout(90_000)
  const { topicPrefix, indexPrefix } = uniquePrefix()
  const groupId = `${topicPrefix}indexer`
  const log = createLogger({ level: 'warn', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
  let kafka: Kafka
  let es: Client
  let running: Running | undefined
  const configFor = (group: string): AppConfig => loadAppConfig(undefined, {}, {
    kafka: { brokers: stack().brokers, topicPrefix },
    elasticsearch: { url: stack().esUrl, indexPrefix },
    // Sealing commits the offsets; a short slice keeps the test short.
    indexer: { groupId: group, topics: ['sshd'], seal: { sliceMs: 300 } },
    retention: { intervalMs: 0 }
  })
  const topic = topicName(topicPrefix, 'sshd')
  const index = `${indexPrefix}-ssh-*`

  async function count (): Promise<number> {
    await es.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true })
    return (await es.count({ index, ignore_unavailable: true, allow_no_indices: true })).count
  }

  /** Every document's `_version`: 1 after the first pass, one more per replay that overwrote it. */
  async function versions (): Promise<Map<number, number>> {
    const res = await es.search({ index, size: N + 10, version: true, _source: false, query: { match_all: {} } })
    const byVersion = new Map<number, number>()
    for (const h of res.hits.hits) byVersion.set(h._version ?? 0, (byVersion.get(h._version ?? 0) ?? 0) + 1)
    return byVersion
  }

  /** Runs one indexer per group until each group has committed the whole topic, then stops them. */
  async function indexUntilCommitted (...groups: string[]): Promise<void> {
    const started = await Promise.all(groups.map(async g => await startIndex(configFor(g), ctx)))
    running = { close: async () => { await Promise.all(started.map(async r => await r.close())) } }
    for (const g of groups) {
      await waitFor(`group ${g} to commit the whole topic`, async () => (await committedToEnd(kafka, g, topic)) ? true : undefined, 60_000, 250)
    }
    await running.close()
    running = undefined
  }

  before(async () => {
    kafka = new Kafka({ clientId: 'replay-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
    es = new Client({ node: stack().esUrl })
    await init(configFor(groupId), ctx)
  })
  after(async () => {
    await running?.close()
    await es.close()
  })

  it('leaves the document count unchanged when the same range is indexed again (group reset to the beginning, and a second group)', async () => {
    await produceEvents(kafka, topic, Array.from({ length: N }, (_, i) => sshLogin(i)))
    assert.equal(await messagesIn(kafka, topic), N)

    await indexUntilCommitted(groupId)
    assert.equal(await count(), N)
    assert.deepEqual([...await versions()], [[1, N]])

    // The same group, its offsets reset to the beginning: every message is read and indexed again.
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.resetOffsets({ groupId, topic, earliest: true })
    } finally {
      await admin.disconnect()
    }
    // …and, at the same time, a second consumer group over the same topic and the same indices.
    await indexUntilCommitted(groupId, `${groupId}-second`)
    assert.equal(await count(), N, 'a replay overwrites, it does not add')
    assert.deepEqual([...await versions()], [[3, N]], 'every document was written twice more (the replays did happen), under its own id')
  })
})
