import assert from 'node:assert/strict'
import { Partitioners, type Admin, type Message, type Producer, type ProducerBatch, type RecordMetadata } from 'kafkajs'
import type { AuditError } from '../../../lib/errors.ts'
import { PartialSendError, chunkTopicMessages, partitionedProducer, sendUntilAcked, splitByPartition } from '../../../lib/kafka.ts'

describe('chunkTopicMessages', () => {
  it('cuts a large request into chunks under the byte limit, keeping order and topics', () => {
    const value = 'x'.repeat(1000)
    const events = Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value }))
    const dead = [{ key: 'd', value: 'dead' }]
    const chunks = chunkTopicMessages([{ topic: 'a', messages: events }, { topic: 'dlq', messages: dead }], 10_000)
    assert.ok(chunks.length >= 5)
    for (const c of chunks) {
      const bytes = c.flatMap(t => t.messages).reduce((n, m) => n + String(m.value).length + String(m.key).length + 64, 0)
      assert.ok(bytes <= 10_000, `chunk of ${bytes} bytes`)
    }
    const flat = chunks.flat().flatMap(t => t.messages.map(m => `${t.topic}:${String(m.key)}`))
    assert.deepEqual(flat, [...events.map(m => `a:${m.key}`), 'dlq:d'])
  })

  it('sends a single message larger than the limit alone rather than never', () => {
    const chunks = chunkTopicMessages([{ topic: 'a', messages: [{ value: 'small' }, { value: 'y'.repeat(5000) }, { value: 'small' }] }], 1000)
    assert.equal(chunks.length, 3)
  })
})

/** Three partitions led by brokers 1..3, as admin.fetchTopicMetadata reports them. */
const threePartitions = [0, 1, 2].map(p => ({ partitionId: p, leader: p + 1, partitionErrorCode: 0, replicas: [1, 2, 3], isr: [1, 2, 3] }))

/** An admin client that knows `topics` (three partitions each) and counts metadata reads. */
function fakeAdmin (topics: string[]): { reads: string[][], connected: boolean } & Pick<Admin, 'connect' | 'disconnect' | 'fetchTopicMetadata'> {
  const admin = {
    reads: [] as string[][],
    connected: false,
    async connect () { admin.connected = true },
    async disconnect () { admin.connected = false },
    async fetchTopicMetadata (opts?: { topics: string[] }) {
      const wanted = opts?.topics ?? topics
      admin.reads.push(wanted)
      return { topics: wanted.map(name => ({ name, partitions: threePartitions })) }
    }
  }
  return admin
}

interface Call { topic: string, partitions: number[], values: string[] }

/**
 * A kafkajs producer stand-in that records each call and acknowledges every partition it was sent to, except
 * while `dropAcks` > 0: then it answers without the acknowledgement, as kafkajs 2.2.4 does when a partition's
 * leader moved to a broker that had already answered (#8).
 */
function fakeProducer (): { calls: Call[], dropAcks: number } & Pick<Producer, 'connect' | 'disconnect' | 'send' | 'sendBatch'> {
  const p = {
    calls: [] as Call[],
    dropAcks: 0,
    async connect () {},
    async disconnect () {},
    async send (): Promise<RecordMetadata[]> { throw new Error('the wrapper sends through sendBatch only') },
    async sendBatch ({ topicMessages = [] }: ProducerBatch): Promise<RecordMetadata[]> {
      await new Promise(resolve => setImmediate(resolve))
      const acks: RecordMetadata[] = []
      for (const { topic, messages } of topicMessages) {
        const partitions = [...new Set(messages.map(m => m.partition ?? -1))]
        p.calls.push({ topic, partitions, values: messages.map(m => String(m.value)) })
        if (p.dropAcks > 0) { p.dropAcks--; continue }
        for (const partition of partitions) acks.push({ topicName: topic, partition, errorCode: 0, baseOffset: '0' })
      }
      return acks
    }
  }
  return p
}

/** Messages keyed like web access records (client IP), so that they spread over the partitions. */
const keyed = (n: number): Message[] => Array.from({ length: n }, (_, i) => ({ key: `198.51.100.${i % 250 + 1}`, value: `line ${i}` }))

describe('splitByPartition', () => {
  it('puts each message on the partition kafkajs\' default partitioner picks for its key, keeping the order within a partition', () => {
    const messages = keyed(60)
    const parts = splitByPartition([{ topic: 'raw', messages }], new Map([['raw', threePartitions]]), Partitioners.DefaultPartitioner())
    const reference = Partitioners.DefaultPartitioner()
    assert.equal(parts.length, 3)
    for (const part of parts) {
      const expected = messages.filter(m => reference({ topic: 'raw', partitionMetadata: threePartitions, message: m }) === part.partition)
      assert.deepEqual(part.messages.map(m => m.value), expected.map(m => m.value))
      assert.ok(part.messages.every(m => m.partition === part.partition))
    }
  })

  it('keeps a partition the caller chose and refuses a topic without known partitions', () => {
    const parts = splitByPartition([{ topic: 'raw', messages: [{ key: 'a', value: 'v', partition: 2 }] }], new Map([['raw', threePartitions]]), Partitioners.DefaultPartitioner())
    assert.deepEqual(parts.map(p => [p.topic, p.partition]), [['raw', 2]])
    assert.throws(() => splitByPartition([{ topic: 'gone', messages: [{ value: 'v' }] }], new Map(), Partitioners.DefaultPartitioner()), (err: AuditError) => err.code === 'AUD_ERR_KAFKA_PRODUCE')
  })
})

describe('partitionedProducer', () => {
  it('sends each topic partition in a kafkajs call of its own and returns every acknowledgement', async () => {
    const inner = fakeProducer()
    const producer = partitionedProducer(inner, fakeAdmin(['raw', 'dlq']))
    const acks = await producer.sendBatch({ acks: -1, topicMessages: [{ topic: 'raw', messages: keyed(30) }, { topic: 'dlq', messages: [{ key: 'k', value: 'dead' }] }] })
    assert.equal(new Set(inner.calls.filter(c => c.topic === 'raw').map(c => c.partitions[0])).size, 3, 'the raw messages spread over its three partitions')
    for (const c of inner.calls) assert.equal(c.partitions.length, 1, `one partition per call, got ${c.partitions.join(',')} for ${c.topic}`)
    assert.deepEqual(inner.calls.filter(c => c.topic === 'raw').flatMap(c => c.values).sort(), keyed(30).map(m => m.value).sort())
    assert.deepEqual(acks.map(a => `${a.topicName}:${a.partition}`).sort(), inner.calls.map(c => `${c.topic}:${c.partitions[0] ?? -1}`).sort())
  })

  it('rejects a send whose reply lacks a partition\'s acknowledgement instead of reporting it written', async () => {
    const inner = fakeProducer()
    inner.dropAcks = 1
    const producer = partitionedProducer(inner, fakeAdmin(['raw']))
    await assert.rejects(producer.send({ topic: 'raw', acks: -1, messages: [{ key: 'one-client', value: 'line' }] }), (err: Error) => {
      assert.equal((err as AuditError).code, 'AUD_ERR_KAFKA_PRODUCE')
      assert.match(err.message, /raw partition \d/)
      return true
    })
  })

  it('lets sendUntilAcked send a partition again until it is acknowledged', async () => {
    const inner = fakeProducer()
    inner.dropAcks = 2
    const retries: number[] = []
    const ok = await sendUntilAcked(partitionedProducer(inner, fakeAdmin(['raw'])), [{ topic: 'raw', messages: [{ key: 'one-client', value: 'line' }] }], {
      signal: new AbortController().signal,
      onRetry: (_err, attempt) => { retries.push(attempt) },
      maxBackoffMs: 1
    })
    assert.equal(ok, true)
    assert.deepEqual(retries, [0, 1])
    assert.equal(inner.calls.length, 3)
  })

  it('reports a failed partition only after every other partition\'s call has settled', async () => {
    const settledAt: string[] = []
    const inner = fakeProducer()
    const slow: typeof inner = {
      ...inner,
      async sendBatch (batch: ProducerBatch) {
        const partition = batch.topicMessages?.[0]?.messages[0]?.partition ?? -1
        if (partition === 0) { settledAt.push('failed'); throw new Error('NOT_ENOUGH_REPLICAS') }
        await new Promise(resolve => setTimeout(resolve, 30))
        settledAt.push(`acked ${partition}`)
        return await inner.sendBatch(batch)
      }
    }
    const messages = keyed(30)
    await assert.rejects(partitionedProducer(slow, fakeAdmin(['raw'])).sendBatch({ acks: -1, topicMessages: [{ topic: 'raw', messages }] }), /NOT_ENOUGH_REPLICAS/)
    settledAt.push('rejected')
    assert.deepEqual(settledAt.slice(0, 1), ['failed'])
    assert.equal(settledAt.at(-1), 'rejected')
    assert.equal(settledAt.filter(s => s.startsWith('acked')).length, 2)
  })

  it('sends again only the partitions Kafka did not acknowledge, each part unchanged', async () => {
    const inner = fakeProducer()
    let failPartition0 = 2
    const tries0: string[][] = []
    const flaky: typeof inner = {
      ...inner,
      async sendBatch (batch: ProducerBatch) {
        const partition = batch.topicMessages?.[0]?.messages[0]?.partition ?? -1
        if (partition === 0) tries0.push(batch.topicMessages?.[0]?.messages.map(m => String(m.value)) ?? [])
        if (partition === 0 && failPartition0-- > 0) throw new Error('NOT_LEADER_OR_FOLLOWER')
        return await inner.sendBatch(batch)
      }
    }
    const messages = keyed(60)
    const errors: unknown[] = []
    const ok = await sendUntilAcked(partitionedProducer(flaky, fakeAdmin(['raw'])), [{ topic: 'raw', messages }], {
      signal: new AbortController().signal,
      onRetry: err => { errors.push(err) },
      maxBackoffMs: 1
    })
    assert.equal(ok, true)
    assert.equal(errors.length, 2)
    assert.ok(errors.every(e => e instanceof PartialSendError && e.code === 'AUD_ERR_KAFKA_PRODUCE' && /raw partition 0: NOT_LEADER_OR_FOLLOWER/.test(e.message)))
    const written = inner.calls.flatMap(c => c.values)
    assert.equal(written.length, 60, 'every message written once: the acknowledged partitions were not sent again')
    assert.deepEqual([...written].sort(), messages.map(m => m.value).sort())
    const p0 = inner.calls.filter(c => c.partitions[0] === 0)
    assert.equal(p0.length, 1)
    assert.ok((p0[0]?.values.length ?? 0) > 0)
    assert.equal(tries0.length, 3)
    assert.ok(tries0.every(t => JSON.stringify(t) === JSON.stringify(tries0[0])), 'partition 0 got the same part on every try (its sequence number dedupes a write that did happen)')
    assert.ok(!JSON.stringify(errors[0]).includes(String(messages[0]?.value)), 'the unsent messages are not in the error\'s serialised form')
  })

  it('reads a topic\'s partitions once for many sends and connects and disconnects the admin client with the producer', async () => {
    const admin = fakeAdmin(['raw'])
    const producer = partitionedProducer(fakeProducer(), admin)
    await producer.connect()
    assert.equal(admin.connected, true)
    for (let i = 0; i < 5; i++) await producer.send({ topic: 'raw', acks: -1, messages: keyed(10) })
    assert.deepEqual(admin.reads, [['raw']])
    await producer.disconnect()
    assert.equal(admin.connected, false)
  })
})
