import assert from 'node:assert/strict'
import { decodeMessage } from '../../../indexer/elasticsearch/transform.ts'
import { apiAuditEvent } from '../../../query-api/audit.ts'
import { sealEvent } from '../../../lib/ecs.ts'

const pos = { topic: 'audit.api.v1', partition: 0, offset: '41' }
const now = new Date('2026-11-29T09:00:00Z')
const event = apiAuditEvent({ action: 'api_search', outcome: 'success', route: '/v1/events', query: {}, status: 200 }, 'api-1', 3, new Date('2026-11-29T08:59:00Z'), 'r1')

describe('indexer decodeMessage', () => {
  it('turns a valid event into an index operation with _id = event id and event.ingested set', () => {
    const d = decodeMessage(Buffer.from(JSON.stringify(event)), pos, 'auditline', now)
    assert.ok('op' in d)
    assert.equal(d.op.id, event.event.id)
    assert.equal(d.op.index, 'auditline-api-2026.11.29')
    assert.equal(d.op.doc.event.ingested, now.toISOString())
  })

  it('dead-letters a message without value, a non-JSON one and one that breaks the schema, with position and reason', () => {
    for (const [value, code, reason] of [
      [null, 'AUD_ERR_INDEX_DECODE', /no value/],
      [Buffer.from('{not json'), 'AUD_ERR_INDEX_DECODE', /not JSON/],
      [Buffer.from(JSON.stringify({ ...event, extra: 1 })), 'AUD_ERR_EVENT_INVALID', /extra/]
    ] as const) {
      const d = decodeMessage(value, pos, 'auditline', now)
      assert.ok('dead' in d)
      assert.equal(d.dead.code, code)
      assert.match(d.dead.reason, reason)
      assert.deepEqual(d.dead.source, { topic: pos.topic, partition: 0, kafka_offset: '41' })
    }
  })

  it('dead-letters an event whose content no longer matches its hash', () => {
    const changed = { ...event, user: { name: 'mallory' } }
    const d = decodeMessage(Buffer.from(JSON.stringify(changed)), pos, 'auditline', now)
    assert.ok('dead' in d)
    assert.equal(d.dead.code, 'AUD_ERR_INDEX_HASH_MISMATCH')
  })

  it('checks schema and hash again only for events that crossed a broker, not for those this process just built (embedded)', () => {
    const changed = Buffer.from(JSON.stringify({ ...event, user: { name: 'mallory' } }))
    const inProcess = decodeMessage(changed, pos, 'auditline', now, { inProcess: true })
    assert.ok('op' in inProcess, 'in process: the producer hashed it, the same code is not run twice')
    assert.equal(inProcess.op.index, 'auditline-api-2026.11.29')
    const fromKafka = decodeMessage(changed, pos, 'auditline', now)
    assert.ok('dead' in fromKafka)
    const notAnEvent = decodeMessage(Buffer.from('[1,2]'), pos, 'auditline', now, { inProcess: true })
    assert.ok('dead' in notAnEvent)
    assert.equal(notAnEvent.dead.code, 'AUD_ERR_EVENT_INVALID')
  })

  it('dead-letters an event whose @timestamp matches the schema but is no real time (no daily index could hold it)', () => {
    const odd = sealEvent({ ...event, '@timestamp': '2026-11-29T23:60:00Z' })
    const d = decodeMessage(Buffer.from(JSON.stringify(odd)), pos, 'auditline', now)
    assert.ok('dead' in d)
    assert.equal(d.dead.code, 'AUD_ERR_EVENT_INVALID')
    assert.match(d.dead.reason, /not a valid time/)
  })
})
