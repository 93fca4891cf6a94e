/**
 * Integration tests' global setup: a real Kafka broker and a real Elasticsearch node. With
 * KAFKA_BROKERS and ELASTICSEARCH_URL set, those are used; otherwise deploy/local starts them (or reuses
 * the ones `npm run stack:up` left running) and stops them afterwards only if this run started them.
 */
import { up, down } from '../../deploy/local/stack.ts'
import { setStack, type TestStack } from '../helpers/stack.ts'

let startedHere = false

export async function mochaGlobalSetup (): Promise<void> {
  const brokers = process.env.KAFKA_BROKERS
  const esUrl = process.env.ELASTICSEARCH_URL
  let stack: TestStack
  if (brokers !== undefined && brokers !== '' && esUrl !== undefined && esUrl !== '') {
    stack = { brokers: brokers.split(','), esUrl, kafkaVersion: 'external', esVersion: 'external', origin: 'KAFKA_BROKERS / ELASTICSEARCH_URL' }
  } else {
    const t0 = Date.now()
    const info = await up({ log: msg => { process.stdout.write(`  [stack] ${msg}\n`) } })
    startedHere = !info.reused
    stack = {
      brokers: info.kafka.brokers,
      esUrl: info.elasticsearch.url,
      kafkaVersion: info.kafka.version,
      esVersion: info.elasticsearch.version,
      origin: `deploy/local (${info.reused ? 'reused running stack' : `started in ${Math.round((Date.now() - t0) / 1000)} s`})`
    }
  }
  // Ask the servers themselves which versions they are, so the line below proves what the tests ran against.
  const es = await (await fetch(`${stack.esUrl}/_nodes/_local`)).json() as { nodes: Record<string, { version: string }> }
  stack.esVersion = Object.values(es.nodes)[0]?.version ?? stack.esVersion
  setStack(stack)
  process.stdout.write(`\n  Integration stack: Kafka ${stack.kafkaVersion} at ${stack.brokers.join(',')}, Elasticsearch ${stack.esVersion} at ${stack.esUrl} — ${stack.origin}\n\n`)
}

export async function mochaGlobalTeardown (): Promise<void> {
  if (startedHere && process.env.AUDITLINE_KEEP_STACK !== '1') await down()
}
