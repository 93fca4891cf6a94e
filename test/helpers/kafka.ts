/**
 * Reading back what arrived in a real Kafka topic, for integration tests.
 */
import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs'
import { stack } from './stack.ts'

export interface Consumed { topic: string, partition: number, message: KafkaMessage }

/**
 * Consumes `topics` from the beginning until `done(all)` is true or `timeoutMs` passes; returns all
 * messages seen. A fresh consumer group each call, so nothing is committed for anyone else.
 */
export async function consumeUntil (topics: string[], done: (all: Consumed[]) => boolean, timeoutMs = 30_000): Promise<Consumed[]> {
  const kafka = new Kafka({ clientId: 'auditline-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `test-${randomBytes(6).toString('hex')}` })
  const all: Consumed[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, timeoutMs)
      consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          all.push({ topic, partition, message })
          if (done(all)) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return all
}

/** Parses every message value as JSON. */
export function values<T = Record<string, unknown>> (msgs: Consumed[]): T[] {
  return msgs.map(m => JSON.parse(m.message.value?.toString('utf8') ?? 'null') as T)
}
