import assert from 'node:assert/strict'
import { kafkaClusterId } from '../../../deploy/local/kafka.ts'

describe('deploy/local KRaft cluster ids', () => {
  it('are 22 base64url characters that never start with "-" (kafka-storage would take the id for an option)', () => {
    // 1 draw in 64 starts with "-": 20,000 draws meet that case ~300 times.
    const ids = Array.from({ length: 20_000 }, () => kafkaClusterId())
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
    assert.equal(new Set(ids).size, ids.length)
  })
})
