/**
 * Kafka access goes through here: kafkajs (last release May 2024) stays behind this module, so that
 * a replacement touches one file. Producers are idempotent with acks=all; consumers never auto-commit.
 */
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { Kafka, Partitioners, logLevel, type Admin, type Producer, type Consumer, type LogEntry, type ITopicConfig, type Message, type SASLOptions, type PartitionMetadata, type ProducerBatch, type ProducerRecord, type RecordMetadata } from 'kafkajs'
import { Type, type Static } from '@sinclair/typebox'
import type { Logger } from './log.ts'
import { sleep, backoff } from './component.ts'
import { AuditError } from './errors.ts'
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
  requestTimeoutMs: Type.Integer({ default: 30000, minimum: 100 }),
  /**
   * TLS to the brokers (a `SSL` or `SASL_SSL` listener). Absent or `enabled: false` means plaintext.
   * Example: `{ enabled: true, caFile: /etc/auditline/kafka-ca.pem }`.
   */
  ssl: Type.Optional(Type.Object({
    /** Speak TLS to every broker. Example: `true`. */
    enabled: Type.Boolean({ default: true }),
    /** PEM file with the CA certificate(s) the brokers' certificates chain to; absent = the system CAs. Example: `/etc/auditline/kafka-ca.pem`. */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    /** PEM client certificate, for brokers that require mutual TLS (`ssl.client.auth=required`). Example: `/etc/auditline/kafka-client.pem`. */
    certFile: Type.Optional(Type.String({ minLength: 1 })),
    /** PEM private key of `certFile` (keep it mode 0600). Example: `/etc/auditline/kafka-client.key`. */
    keyFile: Type.Optional(Type.String({ minLength: 1 })),
    /** Check the broker certificate and host name. Only a test may set `false`. Example: `true`. */
    rejectUnauthorized: Type.Boolean({ default: true })
  }, { additionalProperties: false })),
  /**
   * SASL authentication (a `SASL_SSL` listener; use `plain` only over TLS). The password comes from
   * `AUDITLINE_KAFKA__SASL__PASSWORD` or from `passwordFile`, never from the config file in production.
   * Example: `{ mechanism: scram-sha-512, username: auditline-collector, passwordFile: /run/secrets/kafka-password }`.
   */
  sasl: Type.Optional(Type.Object({
    /** SASL mechanism the listener enables (`sasl.enabled.mechanisms`). Example: `scram-sha-512`. */
    mechanism: Type.Union([Type.Literal('scram-sha-256'), Type.Literal('scram-sha-512'), Type.Literal('plain')]),
    /** SASL user name (the SCRAM credential's `name`). Example: `auditline-indexer`. */
    username: Type.String({ minLength: 1 }),
    /** The password; prefer the env variable `AUDITLINE_KAFKA__SASL__PASSWORD`. Never logged. */
    password: Type.Optional(Type.String({ minLength: 1 })),
    /** File whose content (trailing newline removed) is the password, e.g. a Kubernetes secret mount. Example: `/run/secrets/kafka-password`. */
    passwordFile: Type.Optional(Type.String({ minLength: 1 }))
  }, { additionalProperties: false }))
}, { additionalProperties: false, default: {} })

export type KafkaConfig = Static<typeof KafkaConfigSchema>

/** Reads a secret or certificate file named in the configuration; a missing file is a configuration error. */
function readConfigFile (field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    // The message names the field and the path, never the content.
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`])
  }
}

/** The kafkajs `ssl` and `sasl` options of a configuration (files read now, once). Exported for tests. */
export function kafkaSecurity (cfg: KafkaConfig): { ssl?: ConnectionOptions | boolean, sasl?: SASLOptions } {
  const out: { ssl?: ConnectionOptions | boolean, sasl?: SASLOptions } = {}
  if (cfg.ssl !== undefined && cfg.ssl.enabled) {
    const tls: ConnectionOptions = { rejectUnauthorized: cfg.ssl.rejectUnauthorized }
    if (cfg.ssl.caFile !== undefined) tls.ca = [readConfigFile('kafka.ssl.caFile', cfg.ssl.caFile)]
    if ((cfg.ssl.certFile === undefined) !== (cfg.ssl.keyFile === undefined)) {
      throw new AuditError('AUD_ERR_CONFIG_INVALID', ['kafka.ssl: certFile and keyFile go together (mutual TLS needs both)'])
    }
    if (cfg.ssl.certFile !== undefined) tls.cert = readConfigFile('kafka.ssl.certFile', cfg.ssl.certFile)
    if (cfg.ssl.keyFile !== undefined) tls.key = readConfigFile('kafka.ssl.keyFile', cfg.ssl.keyFile)
    out.ssl = tls
  }
  if (cfg.sasl !== undefined) {
    const { mechanism, username, password, passwordFile } = cfg.sasl
    if ((password === undefined) === (passwordFile === undefined)) {
      throw new AuditError('AUD_ERR_CONFIG_INVALID', ['kafka.sasl: set exactly one of password (AUDITLINE_KAFKA__SASL__PASSWORD) and passwordFile'])
    }
    const secret = password ?? readConfigFile('kafka.sasl.passwordFile', passwordFile ?? '').replace(/\r?\n$/, '')
    if (secret === '') throw new AuditError('AUD_ERR_CONFIG_INVALID', ['kafka.sasl.passwordFile: the file is empty'])
    out.sasl = mechanism === 'plain' ? { mechanism, username, password: secret } : { mechanism, username, password: secret }
  }
  return out
}

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
    ...kafkaSecurity(cfg),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...rest } = entry.log
      klog[LEVELS[entry.level] ?? 'info']({ namespace: entry.namespace, ...rest }, message)
    }
  })
}

/**
 * An idempotent producer: acks=all on every send, retries without duplicates, one partition per kafkajs request
 * (see `partitionedProducer`). Its `connect` and `disconnect` also open and close the admin client that reads
 * the topics' partitions.
 */
export function createProducer (kafka: Kafka): Producer {
  // kafkajs requires maxInFlightRequests ≤ 1 for an idempotent producer to keep ordering.
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner })
  return partitionedProducer(producer, kafka.admin())
}

/** How long the partition list of a topic is trusted before it is read again (kafkajs' `metadataMaxAge` default). */
const PARTITIONS_MAX_AGE_MS = 300_000

/**
 * Wraps a kafkajs producer so that `send` and `sendBatch` assign each message its partition themselves (with
 * kafkajs' default partitioner, so keys land where they always did) and send each partition's messages in a
 * kafkajs call of its own; the calls run side by side and the result is the union of their acknowledgements.
 *
 * Why (#8): kafkajs 2.2.4 retries a failed multi-broker send only towards the brokers that have not answered yet,
 * recomputing partition leaders from fresh metadata (`src/producer/sendMessages.js`). When a leader dies and its
 * partition moves to a broker that has already acknowledged its own part, the dead leader's part is never sent
 * again and the send still resolves: those records are lost silently, or, when the dead leader had replicated
 * them before it died, the partition's sequence number that kafkajs rolled back makes every later send to it
 * fail with OUT_OF_ORDER_SEQUENCE_NUMBER for good (kafkajs issue 1303). A call for one partition talks to one
 * leader at a time: its retry goes to the new leader with the same sequence number, which the broker either
 * appends or recognises as a duplicate of the batch it already has.
 */
export function partitionedProducer<P extends Pick<Producer, 'connect' | 'disconnect' | 'send' | 'sendBatch'>> (producer: P, admin: Pick<Admin, 'connect' | 'disconnect' | 'fetchTopicMetadata'>): P {
  const partitioner = Partitioners.DefaultPartitioner()
  const known = new Map<string, { partitions: PartitionMetadata[], at: number }>()

  /** The partitions of `topics`, read through `admin` when unknown or older than PARTITIONS_MAX_AGE_MS; a failed re-read keeps the last list. */
  async function partitionsOf (topics: string[]): Promise<Map<string, PartitionMetadata[]>> {
    const stale = [...new Set(topics)].filter(t => (known.get(t)?.at ?? -Infinity) < Date.now() - PARTITIONS_MAX_AGE_MS)
    if (stale.length > 0) {
      try {
        const meta = await admin.fetchTopicMetadata({ topics: stale })
        for (const t of meta.topics) known.set(t.name, { partitions: t.partitions, at: Date.now() })
      } catch (err) {
        if (stale.some(t => !known.has(t))) throw err
      }
    }
    return new Map(topics.map(t => [t, known.get(t)?.partitions ?? []]))
  }

  async function sendBatch ({ topicMessages = [], ...rest }: ProducerBatch): Promise<RecordMetadata[]> {
    const parts = splitByPartition(topicMessages, await partitionsOf(topicMessages.map(tm => tm.topic)), partitioner)
    const settled = await Promise.allSettled(parts.map(async ({ topic, partition, messages }) => {
      const acks = await producer.sendBatch({ ...rest, topicMessages: [{ topic, messages }] })
      // acks=0 has no reply to check; otherwise a reply without this partition means it was not written.
      if (rest.acks !== 0 && !acks.some(a => a.topicName === topic && a.partition === partition)) {
        throw new Error('the reply holds no acknowledgement for this partition')
      }
      return acks
    }))
    // Every call has settled before a failure is reported: nothing of this batch is still on its way when the caller retries.
    const failed = settled.flatMap((s, i) => s.status === 'rejected' ? [{ reason: s.reason as unknown, part: parts[i] as typeof parts[number] }] : [])
    const first = failed[0]
    if (first === undefined) return settled.flatMap(s => s.status === 'fulfilled' ? s.value : [])
    const unsent = failed.map(f => ({ topic: f.part.topic, messages: f.part.messages }))
    throw new PartialSendError(unsent, `${first.part.topic} partition ${first.part.partition}`, first.reason)
  }

  return {
    ...producer,
    async connect () {
      await producer.connect()
      await admin.connect()
    },
    async disconnect () {
      try {
        await producer.disconnect()
      } finally {
        await admin.disconnect()
      }
    },
    sendBatch,
    async send ({ topic, messages, ...rest }: ProducerRecord) {
      return await sendBatch({ ...rest, topicMessages: [{ topic, messages }] })
    }
  }
}

/**
 * A partitioned send that Kafka acknowledged only in part. `unsent()` returns the parts that were not
 * acknowledged, each exactly as it was sent (same partition, same messages): sent again, a part that the broker
 * did write after all is recognised by its idempotent-producer sequence number, and the acknowledged parts are
 * not sent twice. The messages are kept out of enumerable properties so that logging the error never writes
 * them (raw web records hold visitor addresses).
 */
export class PartialSendError extends AuditError {
  readonly #unsent: TopicMessages[]
  constructor (unsent: TopicMessages[], where: string, cause: unknown) {
    super('AUD_ERR_KAFKA_PRODUCE', [unsent.reduce((n, tm) => n + tm.messages.length, 0), where, cause], { cause })
    this.#unsent = unsent
  }

  unsent (): TopicMessages[] { return this.#unsent }
}

/**
 * Groups `topicMessages` by topic partition, each message keeping its order and getting its `partition` set
 * (a message that has one keeps it). `partitions` must list every topic's partitions. Exported for tests.
 */
export function splitByPartition (
  topicMessages: readonly TopicMessages[],
  partitions: ReadonlyMap<string, PartitionMetadata[]>,
  partitioner: ReturnType<typeof Partitioners.DefaultPartitioner>
): Array<{ topic: string, partition: number, messages: Message[] }> {
  const parts = new Map<string, { topic: string, partition: number, messages: Message[] }>()
  for (const { topic, messages } of topicMessages) {
    const partitionMetadata = partitions.get(topic) ?? []
    if (partitionMetadata.length === 0) throw new AuditError('AUD_ERR_KAFKA_PRODUCE', [messages.length, topic, 'the topic has no known partitions'])
    for (const message of messages) {
      const partition = partitioner({ topic, partitionMetadata, message })
      const id = `${topic}:${partition}`
      let part = parts.get(id)
      if (part === undefined) { part = { topic, partition, messages: [] }; parts.set(id, part) }
      part.messages.push({ ...message, partition })
    }
  }
  return [...parts.values()]
}

export function createConsumer (kafka: Kafka, groupId: string, opts: { maxBytes?: number, maxBytesPerPartition?: number } = {}): Consumer {
  return kafka.consumer({
    groupId,
    allowAutoTopicCreation: false,
    maxBytes: opts.maxBytes ?? 8 * 1024 * 1024,
    maxBytesPerPartition: opts.maxBytesPerPartition ?? 1024 * 1024,
    sessionTimeout: 30000,
    heartbeatInterval: 3000,
    // A stopping consumer waits for its open fetch; kafkajs' 5 s default would use half of the 10 s SIGTERM budget
    // (cli/main.ts). An idle fetch returning every second costs one small request per second.
    maxWaitTimeInMs: 1000
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
  if (missing.length > 0) {
    // kafkajs' own waitForLeaders retries LEADER_NOT_AVAILABLE only; on a multi-broker cluster the broker it asks may
    // not know a just-created topic yet and answers UNKNOWN_TOPIC_OR_PARTITION, which failed `auditline init`.
    await admin.createTopics({ topics: missing, waitForLeaders: false })
    await waitForLeaders(admin, missing.map(t => t.topic))
  }
  if (present.length > 0) {
    await admin.alterConfigs({
      validateOnly: false,
      // ResourceTypes.TOPIC = 2 in kafkajs.
      resources: present.map(t => ({ type: 2, name: t.topic, configEntries: t.configEntries ?? [] }))
    })
  }
  return { created: missing.map(t => t.topic), updated: present.map(t => t.topic) }
}

/** Resolves once every partition of `topics` has a leader, as seen by the broker asked; gives up after `timeoutMs`. */
async function waitForLeaders (admin: Admin, topics: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer'
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics })
      const ready = meta.topics.length === topics.length && meta.topics.every(t => t.partitions.length > 0 && t.partitions.every(p => p.leader >= 0))
      if (ready) return
      last = 'partitions without a leader'
    } catch (err) {
      const type = (err as { type?: string }).type
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw err
      last = type
    }
    if (Date.now() > deadline) throw new Error(`Topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms (${last}).`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
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
 * until Kafka acknowledges it; an acknowledged chunk, or an acknowledged partition of a chunk (PartialSendError),
 * is never sent again. Resolves true when everything is acknowledged, false when `signal` aborted first (the
 * caller then must not commit or checkpoint anything).
 */
export async function sendUntilAcked (producer: Pick<Producer, 'sendBatch'>, topicMessages: readonly TopicMessages[], opts: {
  signal: AbortSignal
  onRetry: (err: unknown, attempt: number) => void
  maxBackoffMs?: number
}): Promise<boolean> {
  for (const chunk of chunkTopicMessages(topicMessages)) {
    let pending = chunk
    for (let attempt = 0; ; attempt++) {
      if (opts.signal.aborted) return false
      try {
        await producer.sendBatch({ topicMessages: pending, acks: -1 })
        break
      } catch (err) {
        // Only the partitions Kafka did not acknowledge go again (#8: re-sending the whole chunk duplicated the others).
        if (err instanceof PartialSendError) pending = err.unsent()
        opts.onRetry(err, attempt)
        await sleep(backoff(attempt, 250, opts.maxBackoffMs ?? 15_000), opts.signal)
      }
    }
  }
  return true
}
