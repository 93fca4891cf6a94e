/**
 * Kafka access goes through here: kafkajs (last release May 2024) stays behind this module, so that
 * a replacement touches one file. Producers are idempotent with acks=all; consumers never auto-commit.
 */
import { Kafka, Partitioners, logLevel, type Admin, type Producer, type Consumer, type LogEntry, type ITopicConfig, type Message } from 'kafkajs'
import { Type, type Static } from '@sinclair/typebox'
import type { Logger } from './log.ts'
import { sleep, backoff } from './component.ts'
import { TOPICS, topicName, type TopicKey } from './topics.ts'

export const KafkaConfigSchema = Type.Object({
  /** Bootstrap brokers, e.g. `["127.0.0.1:9092"]`. Empty means "no Kafka configured". */
  brokers: Type.Array(Type.String({ minLength: 3 }), { default: [] }),
  /** Client id reported to the brokers. Example: `auditline-web01`. */
  clientId: Type.String({ default: 'auditline', minLength: 1 }),
  /** Prefix for every topic name, e.g. `prod.` (tests use a random one per run). */
  topicPrefix: Type.String({ default: '' }),
  /** Replication factor for topics created by `auditline init` (3 in production). */
  replicationFactor: Type.Integer({ default: 1, minimum: 1 }),
  /** Milliseconds to wait for a broker connection. */
  connectionTimeoutMs: Type.Integer({ default: 5000, minimum: 100 }),
  /** Milliseconds a request may take before it is retried. */
  requestTimeoutMs: Type.Integer({ default: 30000, minimum: 100 })
}, { additionalProperties: false, default: {} })

export type KafkaConfig = Static<typeof KafkaConfigSchema>

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug'
}

export function createKafka (cfg: KafkaConfig, log: Logger): Kafka {
  const klog = log.child({ component: 'kafka' })
  return new Kafka({
    clientId: cfg.clientId,
    brokers: [...cfg.brokers],
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log
      klog[LEVELS[entry.level] ?? 'info']({ namespace: entry.namespace, ...rest }, message)
    }
  })
}

/** An idempotent producer: acks=all on every send, retries without duplicates. */
export function createProducer (kafka: Kafka): Producer {
  // kafkajs requires maxInFlightRequests ≤ 1 for an idempotent producer to keep ordering.
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
}

export function createConsumer (kafka: Kafka, groupId: string, opts: { maxBytes?: number, maxBytesPerPartition?: number } = {}): Consumer {
  return kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    maxBytes: opts.maxBytes ?? 8 * 1024 * 1024,
    maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
    sessionTimeout: 30000,
    heartbeatInterval: 3000
  })
}

/**
 * Creates missing topics of the catalog and re-applies retention configs of existing ones.
 * Idempotent: safe to run on every start.
 */
export async function ensureTopics (admin: Admin, cfg: KafkaConfig, keys: readonly TopicKey[] = Object.keys(TOPICS) as TopicKey[]): Promise<{ created: string[], updated: string[] }> {
  const existing = new Set(await admin.listTopics())
  const wanted: ITopicConfig[] = keys.map(key => {
    const spec = TOPICS[key]
    const configEntries = Object.entries({ 'retention.ms': String(spec.retentionMs), ...spec.configs })
      .map(([name, value]) => ({ name, value }))
    return { topic: topicName(cfg.topicPrefix, key), numPartitions: spec.partitions, replicationFactor: cfg.replicationFactor, configEntries }
  })
  const missing = wanted.filter(t => !existing.has(t.topic))
  const present = wanted.filter(t => existing.has(t.topic))
  if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: true })
  if (present.length > 0) {
    await admin.alterConfigs({
      validateOnly: false,
      // ResourceTypes.TOPIC = 2 in kafkajs.
      resources: present.map(t => ({ type: 2, name: t.topic, configEntries: t.configEntries ?? [] }))
    })
  }
  return { created: missing.map(t => t.topic), updated: present.map(t => t.topic) }
}

/**
 * Kafka refuses a record batch larger than the broker's `message.max.bytes` (1 MB by default) with a
 * non-retriable error: a collector or stage that sends everything it read at once would retry such a batch
 * forever. Requests are therefore cut into chunks of at most `maxBytes` of keys and values, in order.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 768 * 1024

export interface TopicMessages { topic: string, messages: Message[] }

export function chunkTopicMessages (topicMessages: readonly TopicMessages[], maxBytes = DEFAULT_MAX_REQUEST_BYTES): TopicMessages[][] {
  const chunks: TopicMessages[][] = []
  let current: TopicMessages[] = []
  let size = 0
  const push = (topic: string, m: Message): void => {
    const n = sizeOf(m.value) + sizeOf(m.key) + 64
    if (size + n > maxBytes && size > 0) { chunks.push(current); current = []; size = 0 }
    let tm = current[current.length - 1]
    if (tm === undefined || tm.topic !== topic) { tm = { topic, messages: [] }; current.push(tm) }
    tm.messages.push(m)
    size += n
  }
  for (const tm of topicMessages) for (const m of tm.messages) push(tm.topic, m)
  if (size > 0) chunks.push(current)
  return chunks
}

function sizeOf (v: Message['value'] | Message['key']): number {
  if (v === null || v === undefined) return 0
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length
}

/**
 * Sends `topicMessages` in chunks under the request limit with acks=all, retrying each chunk with backoff
 * until Kafka acknowledges it; an acknowledged chunk is never sent again. Resolves true when everything is
 * acknowledged, false when `signal` aborted first (the caller then must not commit or checkpoint anything).
 */
export async function sendUntilAcked (producer: Pick<Producer, 'sendBatch'>, topicMessages: readonly TopicMessages[], opts: {
  signal: AbortSignal
  onRetry: (err: unknown, attempt: number) => void
  maxBackoffMs?: number
}): Promise<boolean> {
  for (const chunk of chunkTopicMessages(topicMessages)) {
    for (let attempt = 0; ; attempt++) {
      if (opts.signal.aborted) return false
      try {
        await producer.sendBatch({ topicMessages: chunk, acks: -1 })
        break
      } catch (err) {
        opts.onRetry(err, attempt)
        await sleep(backoff(attempt, 250, opts.maxBackoffMs ?? 15_000), opts.signal)
      }
    }
  }
  return true
}
