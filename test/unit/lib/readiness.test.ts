import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { errors, type Client } from '@elastic/elasticsearch'
import { Kafka, type Consumer, type Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import { readinessOf, serveMetrics, watchElasticsearch, watchKafka, type ReadinessChange } from '../../../lib/metrics.ts'

// Event names from real kafkajs clients (made without connecting), so that the fakes emit what kafkajs emits.
const kafka = new Kafka({ brokers: ['127.0.0.1:1'], logCreator: () => () => {} })
const PRODUCER_EVENTS = kafka.producer().events
const CONSUMER_EVENTS = kafka.consumer({ groupId: 'readiness-test' }).events

/** A kafkajs-shaped client: `on` like kafkajs (listener gets `{ type, payload }`), `emit` for the test. */
function fakeKafka<T extends Producer | Consumer> (events: T['events']): T & { emit: (type: string, payload?: unknown) => void } {
  const em = new EventEmitter()
  return {
    events,
    on: (type: string, listener: (e: unknown) => void) => { em.on(type, listener); return () => em.off(type, listener) },
    emit: (type: string, payload: unknown = null) => { em.emit(type, { id: 1, type, timestamp: Date.now(), payload }) }
  } as unknown as T & { emit: (type: string, payload?: unknown) => void }
}

/** An Elasticsearch client's boundary: the diagnostic emitter and `ping`, answered a tick later by `answer()` through the emitter. */
function fakeEs (answer: () => Error | null): { client: Client, respond: (err: Error | null) => void, pings: () => number } {
  const diagnostic = new EventEmitter()
  let pings = 0
  const respond = (err: Error | null): void => { diagnostic.emit('response', err, null) }
  const ping = async (): Promise<boolean> => {
    pings++
    await new Promise(resolve => setImmediate(resolve))
    const err = answer()
    respond(err)
    if (err !== null) throw err
    return true
  }
  return { client: { diagnostic, ping } as unknown as Client, respond, pings: () => pings }
}

const responseError = (statusCode: number): Error =>
  new errors.ResponseError({ statusCode, body: { error: { type: 'x', reason: 'y' } }, headers: {}, warnings: null } as unknown as ConstructorParameters<typeof errors.ResponseError>[0])

const gauge = async (reg: Registry, client: string): Promise<number | undefined> =>
  (await reg.getSingleMetric('auditline_client_ready')?.get())?.values.find(v => v.labels.client === client)?.value

describe('readiness of Kafka clients', () => {
  it('keeps a producer not ready until it connects, and not ready again once disconnected until it reconnects', async () => {
    const reg = new Registry()
    const readiness = readinessOf(reg)
    const producer = fakeKafka<Producer>(PRODUCER_EVENTS)
    watchKafka(readiness, 'collect.producer', producer)
    assert.equal(readiness.ready(), false, 'not connected yet')
    producer.emit(PRODUCER_EVENTS.CONNECT)
    assert.equal(readiness.ready(), true)
    assert.equal(await gauge(reg, 'collect.producer'), 1)
    producer.emit(PRODUCER_EVENTS.DISCONNECT)
    assert.equal(readiness.ready(), false)
    assert.equal(await gauge(reg, 'collect.producer'), 0)
    producer.emit(PRODUCER_EVENTS.CONNECT)
    assert.equal(readiness.ready(), true)
  })

  it('takes a crashed consumer out until kafkajs restarts it, in the order kafkajs emits (STOP, DISCONNECT, CRASH; CONNECT, GROUP_JOIN)', () => {
    const readiness = readinessOf(new Registry())
    const consumer = fakeKafka<Consumer>(CONSUMER_EVENTS)
    const changes: ReadinessChange[] = []
    readiness.onChange(c => changes.push(c))
    watchKafka(readiness, 'indexer.consumer', consumer)
    consumer.emit(CONSUMER_EVENTS.CONNECT)
    consumer.emit(CONSUMER_EVENTS.GROUP_JOIN, { groupId: 'g' })
    assert.equal(readiness.ready(), true)
    const error = Object.assign(new Error('Connection timeout'), { name: 'KafkaJSNumberOfRetriesExceeded' })
    consumer.emit(CONSUMER_EVENTS.STOP)
    consumer.emit(CONSUMER_EVENTS.DISCONNECT)
    consumer.emit(CONSUMER_EVENTS.CRASH, { error, groupId: 'g', restart: true })
    assert.equal(readiness.ready(), false)
    consumer.emit(CONSUMER_EVENTS.CONNECT)
    assert.equal(readiness.ready(), true)
    consumer.emit(CONSUMER_EVENTS.GROUP_JOIN, { groupId: 'g' })
    assert.deepEqual(changes, [
      { client: 'indexer.consumer', up: true, reason: '' },
      { client: 'indexer.consumer', up: false, reason: 'stopped' },
      { client: 'indexer.consumer', up: false, reason: 'disconnected' },
      { client: 'indexer.consumer', up: false, reason: 'crashed (KafkaJSNumberOfRetriesExceeded: Connection timeout), restarting' },
      { client: 'indexer.consumer', up: true, reason: '' }
    ], 'listeners hear changes only')
  })

  it('stays not ready after a crash that kafkajs does not restart', () => {
    const readiness = readinessOf(new Registry())
    const consumer = fakeKafka<Consumer>(CONSUMER_EVENTS)
    watchKafka(readiness, 'anonymizer.consumer', consumer)
    consumer.emit(CONSUMER_EVENTS.CONNECT)
    consumer.emit(CONSUMER_EVENTS.CRASH, { error: new TypeError('bad handler'), groupId: 'g', restart: false })
    consumer.emit(CONSUMER_EVENTS.HEARTBEAT, { groupId: 'g' })
    assert.equal(readiness.ready(), false)
  })

  it('is ready only when every client of the stage is up', () => {
    const readiness = readinessOf(new Registry())
    const consumer = fakeKafka<Consumer>(CONSUMER_EVENTS)
    const producer = fakeKafka<Producer>(PRODUCER_EVENTS)
    watchKafka(readiness, 'stats.consumer', consumer)
    watchKafka(readiness, 'stats.producer', producer)
    consumer.emit(CONSUMER_EVENTS.CONNECT)
    assert.equal(readiness.ready(), false)
    producer.emit(PRODUCER_EVENTS.CONNECT)
    assert.equal(readiness.ready(), true)
  })

  it('gives one readiness per metrics registry', () => {
    const reg = new Registry()
    assert.equal(readinessOf(reg), readinessOf(reg))
    assert.notEqual(readinessOf(reg), readinessOf(new Registry()))
  })

  it('starts a client tracked again (a stage restarted in the same process) as not connected', () => {
    const readiness = readinessOf(new Registry())
    const first = fakeKafka<Producer>(PRODUCER_EVENTS)
    watchKafka(readiness, 'panel.producer', first)
    first.emit(PRODUCER_EVENTS.CONNECT)
    watchKafka(readiness, 'panel.producer', fakeKafka<Producer>(PRODUCER_EVENTS))
    assert.equal(readiness.ready(), false)
  })
})

describe('readiness of Elasticsearch clients', () => {
  const settle = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

  it('asks the cluster at once and counts any HTTP answer as up (the integ-test node answers HEAD / with 405)', async () => {
    const readiness = readinessOf(new Registry())
    const es = fakeEs(() => responseError(405))
    watchElasticsearch(readiness, 'query-api.elasticsearch', es.client)
    await settle()
    assert.equal(es.pings(), 1)
    assert.equal(readiness.ready(), true)
  })

  it('goes down on a request without an answer or an unavailable cluster, and up on the next answer', async () => {
    const readiness = readinessOf(new Registry())
    const es = fakeEs(() => null)
    watchElasticsearch(readiness, 'indexer.elasticsearch', es.client)
    await settle()
    for (const err of [new errors.ConnectionError('connect ECONNREFUSED 127.0.0.1:9200'), new errors.TimeoutError('Request timed out'), new errors.NoLivingConnectionsError('none', {} as never), responseError(503), responseError(502), responseError(401)]) {
      es.respond(null)
      assert.equal(readiness.ready(), true)
      es.respond(err)
      assert.equal(readiness.ready(), false, err.message)
      await settle()
    }
    es.respond(responseError(404))
    assert.equal(readiness.ready(), true, 'a 404 is Elasticsearch answering')
  })

  it('tells listeners of changes only, not of every answer', async () => {
    const readiness = readinessOf(new Registry())
    const es = fakeEs(() => null)
    const changes: ReadinessChange[] = []
    readiness.onChange(c => changes.push(c))
    watchElasticsearch(readiness, 'indexer.elasticsearch', es.client)
    await settle()
    for (const err of [null, responseError(404), responseError(409), responseError(503), responseError(503), responseError(502), null]) es.respond(err)
    assert.deepEqual(changes, [
      { client: 'indexer.elasticsearch', up: true, reason: '' },
      { client: 'indexer.elasticsearch', up: false, reason: 'HTTP 503' },
      { client: 'indexer.elasticsearch', up: false, reason: 'HTTP 502' },
      { client: 'indexer.elasticsearch', up: true, reason: '' }
    ])
  })

  it('ignores aborted requests and serialization errors, which say nothing about the connection', async () => {
    const readiness = readinessOf(new Registry())
    const es = fakeEs(() => null)
    watchElasticsearch(readiness, 'retention.elasticsearch', es.client)
    await settle()
    es.respond(new errors.RequestAbortedError('Request aborted'))
    es.respond(new errors.SerializationError('bad json', {}))
    assert.equal(readiness.ready(), true)
  })

  it('asks again while down at each readiness check, one request at a time, so that an idle client recovers', async () => {
    const readiness = readinessOf(new Registry())
    let reachable = false
    const es = fakeEs(() => reachable ? null : new errors.ConnectionError('connect ECONNREFUSED'))
    watchElasticsearch(readiness, 'query-api.elasticsearch', es.client)
    await settle()
    assert.equal(es.pings(), 1)
    assert.equal(readiness.ready(), false)
    await settle()
    assert.equal(es.pings(), 2, 'a check while down asks again')
    reachable = true
    readiness.ready()
    readiness.ready()
    await settle()
    assert.equal(es.pings(), 3, 'one request in flight at a time')
    assert.equal(readiness.ready(), true)
    readiness.ready()
    await settle()
    assert.equal(es.pings(), 3, 'an up client is not asked')
  })
})

describe('/readyz with the readiness registry', () => {
  it('answers 503 while a watched client is down and 200 once it is back', async () => {
    const reg = new Registry()
    const readiness = readinessOf(reg)
    const producer = fakeKafka<Producer>(PRODUCER_EVENTS)
    watchKafka(readiness, 'serve.producer', producer)
    producer.emit(PRODUCER_EVENTS.CONNECT)
    const srv = await serveMetrics(reg, '127.0.0.1', 0, { ready: () => readiness.ready() })
    try {
      const readyz = srv.url.replace(/\/metrics$/, '/readyz')
      assert.equal((await fetch(readyz)).status, 200)
      producer.emit(PRODUCER_EVENTS.DISCONNECT)
      assert.equal((await fetch(readyz)).status, 503)
      assert.match(await (await fetch(srv.url)).text(), /auditline_client_ready\{client="serve.producer"\} 0/)
      producer.emit(PRODUCER_EVENTS.CONNECT)
      assert.equal((await fetch(readyz)).status, 200)
    } finally {
      await srv.close()
    }
  })
})
