import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { topicName } from '../../../lib/topics.ts'
import { assertEvent, type AuditEvent } from '../../../lib/ecs.ts'
import type { DeadLetter } from '../../../lib/deadletter.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, startIndex } from '../../../cli/pipeline.ts'
import type { Running } from '../../../lib/component.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { committedToEnd, resealed, sshLogin } from '../../helpers/audit-events.ts'

describe('indexer: a document the mapping refuses', function () {
  this.timeout(60_000)
  const { topicPrefix, indexPrefix } = uniquePrefix()
  const groupId = `${topicPrefix}indexer`
  const log = createLogger({ level: 'warn', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
  const config = (): AppConfig => loadAppConfig(undefined, {}, {
    kafka: { brokers: stack().brokers, topicPrefix },
    elasticsearch: { url: stack().esUrl, indexPrefix },
    indexer: { groupId, topics: ['sshd'], seal: { sliceMs: 300 } },
    retention: { intervalMs: 0 }
  })
  let running: Running | undefined
  let es: Client
  let cfg: AppConfig

  before(async () => {
    es = new Client({ node: stack().esUrl })
    cfg = config()
  })
  after(async () => {
    await running?.close()
    await es.close()
  })

  it('dead-letters it with a reason naming the field, and indexes the events after it', async () => {
    // Both pass the event schema (source.ip is a string of 2–64 characters, custom sets take strings or
    // integers) and carry a correct hash: only Elasticsearch's mapping (ip, long) can refuse them.
    const badIp = resealed(sshLogin(1), e => {
      (e.source as { ip: string }).ip = 'not-an-ip'
      delete e.related // keep the bad value in one field, so that the reason can name exactly that one
    })
    const badLong = resealed(sshLogin(2), e => { (e.ssh as Record<string, unknown>).disconnect_code = 'eleven' })
    for (const e of [badIp, badLong]) assertEvent(e)
    const good = [sshLogin(0), sshLogin(3), sshLogin(4)]
    const topic = topicName(topicPrefix, 'sshd')
    const kafka = new Kafka({ clientId: 'mapping-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
    await init(cfg, ctx)
    // One partition's order: good, bad, bad, good, good. The same key puts them on the same partition.
    const ordered: AuditEvent[] = [good[0], badIp, badLong, good[1], good[2]] as AuditEvent[]
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: ordered.map(e => ({ key: 'one-partition', value: JSON.stringify(e) })) })
    await producer.disconnect()

    running = await startIndex(cfg, ctx)
    await waitFor('the indexer to commit the whole topic', async () => (await committedToEnd(kafka, groupId, topic)) ? true : undefined, 30_000)

    const index = `${indexPrefix}-ssh-*`
    await es.indices.refresh({ index })
    const ids = (await es.search({ index, size: 10, _source: false })).hits.hits.map(h => h._id).sort()
    assert.deepEqual(ids, good.map(e => e.event.id).sort(), 'the stream continued past the refused documents')

    const dead = values<DeadLetter>(await consumeUntil([topicName(topicPrefix, 'deadletter')], all => all.length >= 2, 15_000))
    assert.equal(dead.length, 2)
    const byId = new Map(dead.map(d => [(JSON.parse(d.original ?? '{}') as AuditEvent).event.id, d]))
    const ip = byId.get(badIp.event.id)
    const long = byId.get(badLong.event.id)
    assert.ok(ip !== undefined && long !== undefined, 'each refused event is in the dead-letter topic with its original')
    for (const d of [ip, long]) {
      assert.equal(d.stage, 'index')
      assert.equal(d.code, 'AUD_ERR_INDEX_BULK_REJECTED')
      assert.equal(d.source.topic, topic)
      assert.equal(d.source.stream, 'indexer-test/auth')
    }
    assert.match(ip.reason, /HTTP 400 document_parsing_exception: .*\[source\.ip\]/)
    assert.match(long.reason, /HTTP 400 document_parsing_exception: .*\[ssh\.disconnect_code\]/)
    assert.equal(ip.sequence, 1)
    assert.equal(long.sequence, 2)
    // The original is the event as sent, so that it can be corrected and replayed.
    assert.equal((JSON.parse(ip.original ?? '{}') as AuditEvent).source?.ip, 'not-an-ip')
  })
})
