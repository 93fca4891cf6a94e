import assert from 'node:assert/strict'
import { chunkTopicMessages } from '../../../lib/kafka.ts'

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
