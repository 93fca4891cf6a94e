import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Producer } from 'kafkajs'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { startFileCollector, type ToMessage } from '../../../ingest/common/collector.ts'
import { createWebAccessToMessage } from '../../../ingest/web-access/index.ts'
import type { DeadLetter } from '../../../lib/deadletter.ts'

type Batch = Parameters<Producer['sendBatch']>[0]

/** A producer that records what it was asked to send and acknowledges at once. */
function recordingProducer (): { producer: Pick<Producer, 'sendBatch'>, batches: Batch[] } {
  const batches: Batch[] = []
  return { batches, producer: { sendBatch: async (b: Batch) => { batches.push(b); return [] } } }
}

const FIXTURE = join(import.meta.dirname, '..', '..', 'fixtures', 'web-access', 'nginx-combined.log')

describe('file collector with a source\'s own toMessage step', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-tomessage-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  async function collect (text: string, toMessage: ToMessage, restricted: boolean): Promise<Batch[]> {
    const file = join(dir, 'access.log')
    await writeFile(file, text)
    const { producer, batches } = recordingProducer()
    const running = await startFileCollector({
      toMessage,
      restricted,
      source: 'site-a',
      host: 'web-1',
      paths: [file],
      checkpointDir: join(dir, 'cp'),
      topic: 't.web.access.raw.v1',
      deadletterTopic: 't.audit.deadletter.v1',
      maxLineBytes: 4096,
      batchLines: 1000,
      batchBytes: 1 << 20,
      pollMs: 10
    }, { log: createLogger({ level: 'silent' }), producer, metrics: new Registry() })
    await running.drained()
    await running.close()
    return batches
  }

  it('sends the messages toMessage builds, with their keys, to the source topic, numbering lines gap-free with dead letters', async () => {
    const real = (await readFile(FIXTURE, 'utf8')).split('\n').slice(0, 3)
    const batches = await collect([real[0], 'garbage 192.0.2.1', real[1], '', real[2]].join('\n') + '\n', createWebAccessToMessage('combined', {}), true)
    const sent = batches.flatMap(b => b.topicMessages ?? [])
    const events = sent.filter(t => t.topic === 't.web.access.raw.v1').flatMap(t => t.messages)
    const dead = sent.filter(t => t.topic === 't.audit.deadletter.v1').flatMap(t => t.messages)
    assert.deepEqual(events.map(m => m.key), ['127.0.0.1', '127.0.0.1', '127.0.0.1'])
    assert.deepEqual(events.map(m => (JSON.parse(String(m.value)) as { event: { sequence: number } }).event.sequence), [0, 2, 3])
    assert.equal(dead.length, 1)
    const d = JSON.parse(String(dead[0]?.value)) as DeadLetter
    assert.equal(d.sequence, 1)
    assert.equal(d.original, undefined, 'restricted: the line is not copied into the dead letter')
    assert.ok(!String(dead[0]?.value).includes('192.0.2.1'))
  })

  it('keeps the line in dead letters of a source that is not restricted', async () => {
    const batches = await collect('one line\n', () => ({ error: 'no' }), false)
    const d = JSON.parse(String(batches[0]?.topicMessages?.[0]?.messages[0]?.value)) as DeadLetter
    assert.equal(d.original, 'one line')
    assert.equal(d.reason, 'no')
  })
})
