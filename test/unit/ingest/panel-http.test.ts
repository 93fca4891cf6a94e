import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import type { Producer, ProducerRecord, RecordMetadata } from 'kafkajs'
import { Registry } from 'prom-client'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import { eventId, verifyEventHash, type AuditEvent } from '../../../lib/ecs.ts'
import { buildPanelApp } from '../../../ingest/panel-http/app.ts'
import { openJournals, validate } from '../../../ingest/panel-http/run.ts'
import type { PanelConfig } from '../../../ingest/panel-http/config.ts'
import type { SequenceJournal } from '../../../lib/sequence-journal.ts'

/** A recording producer (the boundary fake): keeps every record, or fails while `failing` is set. */
class RecordingProducer implements Pick<Producer, 'send'> {
  records: ProducerRecord[] = []
  failing: Error | undefined
  /** When set, `send` never settles (a broker that accepts the connection but never answers). */
  hang = false

  async send (record: ProducerRecord): Promise<RecordMetadata[]> {
    if (this.hang) return await new Promise<never>(() => {})
    if (this.failing !== undefined) throw this.failing
    this.records.push(record)
    return []
  }

  events (): AuditEvent[] {
    return this.records.flatMap(r => r.messages.map(m => JSON.parse(String(m.value)) as AuditEvent))
  }
}

type Body = Record<string, unknown>

function customerChange (over: Body = {}): Body {
  return {
    id: 'chg-0001',
    timestamp: '2026-11-28T09:15:00+01:00',
    actor: { kind: 'customer', id: 'cust-4711', name: 'kunde4711' },
    customer: 'cust-4711',
    object: { type: 'mailbox', id: 'info@example.org' },
    action: 'update',
    changed_fields: ['quota', 'spam_filter'],
    source_ip: '2001:db8::17',
    ...over
  }
}

function staffChange (over: Body = {}): Body {
  return customerChange({ id: 'chg-staff-1', actor: { kind: 'staff', id: 'staff-17', name: 'anna.support' }, source_ip: '192.0.2.44', ...over })
}

describe('panel-http intake (app.inject, recording producer)', function () {
  this.timeout(20_000)
  let dir: string
  let keyA: { id: string, key: string, hash: string }
  let keyT: { id: string, key: string, hash: string }
  let producer: RecordingProducer
  let journals: Map<string, SequenceJournal> | undefined
  let app: FastifyInstance

  async function stop (): Promise<void> {
    await app?.close()
    for (const j of journals?.values() ?? []) await j.close()
  }

  async function build (over: Partial<PanelConfig> = {}): Promise<void> {
    await stop()
    const cfg = validate({
      port: 0,
      stateDir: join(dir, 'state'),
      clients: [
        { id: keyA.id, hash: keyA.hash, name: 'panel prod' },
        { id: keyT.id, hash: keyT.hash, name: 'reseller panel', tenant: 'cust-4711' }
      ],
      ackTimeoutMs: 300,
      maxBatch: 5,
      ...over
    })
    producer = new RecordingProducer()
    journals = await openJournals(cfg)
    app = buildPanelApp(cfg, { log: createLogger({ level: 'silent' }), producer, topic: 'x.audit.panel.v1', journals, metrics: new Registry() })
  }

  function post (body: unknown, opts: { key?: string, batch?: boolean } = {}): Promise<LightMyRequestResponse> {
    return app.inject({
      method: 'POST',
      url: opts.batch === true ? '/v1/panel-events/batch' : '/v1/panel-events',
      headers: { authorization: `ApiKey ${opts.key ?? keyA.key}` },
      payload: body as Body
    })
  }

  before(async () => {
    keyA = await createKey()
    keyT = await createKey()
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-panel-'))
    journals = undefined
    await build()
  })
  afterEach(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers 202 for a customer change and produces one sealed ECS event keyed by customer with acks=-1', async () => {
    const res = await post(customerChange())
    assert.equal(res.statusCode, 202, res.body)
    const expectedId = eventId('panel', keyA.id, 'chg-0001')
    assert.deepEqual(res.json(), { id: 'chg-0001', event_id: expectedId, sequence: 0 })
    assert.equal(producer.records.length, 1)
    const rec = producer.records[0] as ProducerRecord
    assert.equal(rec.topic, 'x.audit.panel.v1')
    assert.equal(rec.acks, -1)
    assert.equal(rec.messages[0]?.key, 'cust-4711')
    const e = producer.events()[0] as AuditEvent
    assert.equal(e.event.id, expectedId)
    assert.equal(e['@timestamp'], '2026-11-28T08:15:00.000Z')
    assert.deepEqual(e.event.category, ['configuration'])
    assert.deepEqual(e.event.type, ['change'])
    assert.equal(e.event.action, 'panel_update')
    assert.equal(e.event.outcome, 'success')
    assert.equal(e.event.sequence, 0)
    assert.equal(e.auditline.class, 'panel')
    assert.equal(e.auditline.stream, `panel/${keyA.id}`)
    assert.equal(e.user?.name, 'kunde4711')
    assert.equal(e.user?.id, 'cust-4711')
    assert.equal(e.source?.ip, '2001:db8::17')
    assert.deepEqual(e.panel, {
      change_id: 'chg-0001',
      client: keyA.id,
      actor_kind: 'customer',
      actor_id: 'cust-4711',
      customer: 'cust-4711',
      object_type: 'mailbox',
      object_id: 'info@example.org',
      action: 'update',
      changed_fields: ['quota', 'spam_filter']
    })
    assert.ok(verifyEventHash(e).ok, 'event.hash matches the content')
    assert.equal(e.auditline.flags, undefined)
  })

  it('refuses a staff change without ticket_id with 422 naming ticket_id, and produces nothing', async () => {
    const res = await post(staffChange())
    assert.equal(res.statusCode, 422)
    const body = res.json() as { error: string, message: string, items: Array<{ index: number, field: string }> }
    assert.equal(body.error, 'AUD_ERR_PANEL_EVENT_INVALID')
    assert.match(body.message, /ticket_id is required when actor\.kind is "staff"/)
    assert.deepEqual(body.items.map(i => i.field), ['ticket_id'])
    assert.equal(producer.records.length, 0)
  })

  it('accepts a staff change with a ticket and carries it in panel.ticket_id', async () => {
    const res = await post(staffChange({ ticket_id: 'OPS-2026#4711', action: 'delete', object: { type: 'ftp_user', id: 'web12_ftp3' }, changed_fields: [] }))
    assert.equal(res.statusCode, 202, res.body)
    const e = producer.events()[0] as AuditEvent
    assert.equal(e.panel?.ticket_id, 'OPS-2026#4711')
    assert.equal(e.panel?.actor_kind, 'staff')
    assert.equal(e.user?.name, 'anna.support')
    assert.deepEqual(e.event.category, ['iam'])
    assert.deepEqual(e.event.type, ['user', 'deletion'])
    assert.equal(e.event.action, 'panel_delete')
    assert.deepEqual(e.related?.ip, ['192.0.2.44'])
  })

  it('refuses placeholder tickets such as "n/a"', async () => {
    const res = await post(staffChange({ ticket_id: 'n/a' }))
    assert.equal(res.statusCode, 422)
    assert.match((res.json() as { message: string }).message, /ticket_id "n\/a" is a placeholder/)
  })

  it('accepts a staff change without ticket when requireTicketForStaff is false, flagged and tagged', async () => {
    await build({ requireTicketForStaff: false })
    const res = await post(staffChange())
    assert.equal(res.statusCode, 202, res.body)
    const e = producer.events()[0] as AuditEvent
    assert.deepEqual(e.auditline.flags, ['staff_change_without_ticket'])
    assert.deepEqual(e.tags, ['staff_change_without_ticket'])
    assert.equal(e.panel?.ticket_id, undefined)
  })

  for (const [name, extra] of [
    ['old/new values', { old: { quota: 1 }, new: { quota: 2 } }],
    ['a values map', { values: { quota: 2 } }],
    ['a password', { password: 'hunter2' }]
  ] as const) {
    it(`refuses a body carrying ${name} with 422 saying values must not be sent`, async () => {
      const res = await post(customerChange(extra))
      assert.equal(res.statusCode, 422)
      const body = res.json() as { error: string, message: string }
      assert.equal(body.error, 'AUD_ERR_PANEL_EVENT_INVALID')
      assert.match(body.message, /values must not be sent/)
      assert.ok(!res.body.includes('hunter2'), 'the response never echoes a value')
      assert.equal(producer.records.length, 0)
    })
  }

  it('refuses values nested in the object and field names that carry values', async () => {
    const nested = await post(customerChange({ object: { type: 'mailbox', id: 'x', new_value: 'secret' } }))
    assert.equal(nested.statusCode, 422)
    assert.match((nested.json() as { message: string }).message, /object\.new_value values must not be sent/)
    const smuggled = await post(customerChange({ changed_fields: ['quota=500MB'] }))
    assert.equal(smuggled.statusCode, 422)
    assert.match((smuggled.json() as { message: string }).message, /changed_fields\.0 must be a field name/)
  })

  it('refuses impossible dates, bad IPs and missing fields with the field named', async () => {
    const res = await post(customerChange({ timestamp: '2026-02-30T10:00:00Z', source_ip: '300.1.1.1' }))
    assert.equal(res.statusCode, 422)
    const fields = (res.json() as { items: Array<{ field: string }> }).items.map(i => i.field)
    assert.deepEqual(fields.sort(), ['source_ip', 'timestamp'])
    const { customer: _c, ...noCustomer } = customerChange()
    const missing = await post(noCustomer)
    assert.equal(missing.statusCode, 422)
    assert.match((missing.json() as { message: string }).message, /customer is required/)
  })

  it('answers 401 to a wrong or missing key', async () => {
    const wrong = await post(customerChange(), { key: `al_${keyA.id}.${'x'.repeat(32)}` })
    assert.equal(wrong.statusCode, 401)
    assert.equal((wrong.json() as { error: string }).error, 'AUD_ERR_API_UNAUTHENTICATED')
    const none = await app.inject({ method: 'POST', url: '/v1/panel-events', payload: customerChange() })
    assert.equal(none.statusCode, 401)
    assert.equal(producer.records.length, 0)
  })

  it('answers 403 when a tenant-bound client posts another customer\'s event', async () => {
    const own = await post(customerChange(), { key: keyT.key })
    assert.equal(own.statusCode, 202, own.body)
    const other = await post(customerChange({ id: 'chg-9', customer: 'cust-9999' }), { key: keyT.key })
    assert.equal(other.statusCode, 403)
    const body = other.json() as { error: string, message: string }
    assert.equal(body.error, 'AUD_ERR_PANEL_TENANT_MISMATCH')
    assert.match(body.message, /cust-4711 only, not cust-9999/)
    assert.equal(producer.records.length, 1, 'only the own-customer event was produced')
  })

  it('refuses a batch with one invalid item as a whole: 422 lists the item, nothing is produced', async () => {
    const items = [customerChange({ id: 'b1' }), staffChange({ id: 'b2' }), customerChange({ id: 'b3', diff: 'x' })]
    const res = await post(items, { batch: true })
    assert.equal(res.statusCode, 422)
    const body = res.json() as { message: string, items: Array<{ index: number, field: string, reason: string }> }
    assert.deepEqual(body.items.map(i => [i.index, i.field]), [[1, 'ticket_id'], [2, 'diff']])
    assert.match(body.message, /item 1: ticket_id is required/)
    assert.equal(producer.records.length, 0)
    // Nothing was reserved either: the next accepted event still gets sequence 0.
    const ok = await post(customerChange({ id: 'b1' }))
    assert.equal((ok.json() as { sequence: number }).sequence, 0)
  })

  it('accepts a valid batch with 202 after one acknowledged send, with consecutive sequences', async () => {
    const items = [customerChange({ id: 'b1' }), staffChange({ id: 'b2', ticket_id: 'T-1' }), customerChange({ id: 'b3', action: 'create' })]
    const res = await post(items, { batch: true })
    assert.equal(res.statusCode, 202, res.body)
    const body = res.json() as { accepted: number, events: Array<{ id: string, sequence: number }> }
    assert.equal(body.accepted, 3)
    assert.deepEqual(body.events.map(e => [e.id, e.sequence]), [['b1', 0], ['b2', 1], ['b3', 2]])
    assert.equal(producer.records.length, 1)
    assert.deepEqual(producer.events().map(e => e.event.sequence), [0, 1, 2])
    assert.deepEqual(producer.events()[2]?.event.type, ['creation'])
  })

  it('refuses a batch larger than maxBatch with 413 and a non-array batch with 400', async () => {
    const big = await post(Array.from({ length: 6 }, (_v, i) => customerChange({ id: `c${i}` })), { batch: true })
    assert.equal(big.statusCode, 413)
    assert.equal((big.json() as { error: string }).error, 'AUD_ERR_PANEL_TOO_LARGE')
    const obj = await post(customerChange(), { batch: true })
    assert.equal(obj.statusCode, 400)
    assert.equal((obj.json() as { error: string }).error, 'AUD_ERR_PANEL_BAD_REQUEST')
  })

  it('answers 503 (retriable, never 2xx) when Kafka fails or does not answer in time', async () => {
    producer.failing = new Error('broker not available')
    const failed = await post(customerChange())
    assert.equal(failed.statusCode, 503)
    assert.equal(failed.headers['retry-after'], '1')
    assert.equal((failed.json() as { error: string }).error, 'AUD_ERR_PANEL_UNAVAILABLE')
    producer.failing = undefined
    producer.hang = true
    const hung = await post(staffChange({ ticket_id: 'T-2' }))
    assert.equal(hung.statusCode, 503)
    assert.match((hung.json() as { message: string }).message, /no acknowledgement within 300 ms/)
    assert.equal(producer.records.length, 0)
  })

  it('gives a retry of the same id the same event.id, sequence and hash, also after a 503 and a restart', async () => {
    producer.failing = new Error('broker not available')
    assert.equal((await post(customerChange())).statusCode, 503)
    producer.failing = undefined
    const second = await post(customerChange({ id: 'chg-0002' }))
    assert.equal((second.json() as { sequence: number }).sequence, 1, 'the failed id keeps its number; the next id gets the next one')
    const retry = await post(customerChange())
    assert.equal(retry.statusCode, 202)
    assert.deepEqual(retry.json(), { id: 'chg-0001', event_id: eventId('panel', keyA.id, 'chg-0001'), sequence: 0 })
    const again = await post(customerChange())
    assert.equal(again.statusCode, 202)
    const [, e1, e2] = producer.events()
    assert.deepEqual(e1, e2, 'the retried event is identical (same id, sequence, hash)')

    await build() // restart: journals are re-read from stateDir
    const afterRestart = await post(customerChange())
    assert.equal((afterRestart.json() as { sequence: number }).sequence, 0)
    assert.deepEqual(producer.events()[0], e1)
    const fresh = await post(customerChange({ id: 'chg-0003' }))
    assert.equal((fresh.json() as { sequence: number }).sequence, 2, 'numbering continues after the restart, no reuse, no gap')
  })

  it('answers 409 when an id comes again with different content', async () => {
    assert.equal((await post(customerChange())).statusCode, 202)
    const res = await post(customerChange({ changed_fields: ['quota'] }))
    assert.equal(res.statusCode, 409)
    assert.equal((res.json() as { error: string }).error, 'AUD_ERR_PANEL_ID_CONFLICT')
    assert.equal(producer.records.length, 1)
  })

  it('answers 503 before reserving when more events wait for Kafka than maxPendingEvents', async () => {
    await build({ maxPendingEvents: 1, ackTimeoutMs: 600 })
    producer.hang = true
    const first = post(customerChange())
    await new Promise(resolve => setTimeout(resolve, 50))
    const second = await post(customerChange({ id: 'chg-0002' }))
    assert.equal(second.statusCode, 503)
    assert.match((second.json() as { message: string }).message, /maxPendingEvents/)
    producer.hang = false
    assert.equal((await first).statusCode, 503)
  })

  it('serves /healthz without a key and refuses a non-JSON body with 4xx', async () => {
    const h = await app.inject({ method: 'GET', url: '/healthz' })
    assert.equal(h.statusCode, 200)
    const text = await app.inject({ method: 'POST', url: '/v1/panel-events', headers: { authorization: `ApiKey ${keyA.key}`, 'content-type': 'application/json' }, payload: '{"id":' })
    assert.equal(text.statusCode, 400)
    assert.equal((text.json() as { error: string }).error, 'AUD_ERR_PANEL_BAD_REQUEST')
  })

  it('refuses duplicate client ids in the config', () => {
    assert.throws(() => validate({ clients: [{ id: keyA.id, hash: keyA.hash, name: 'a' }, { id: keyA.id, hash: keyA.hash, name: 'b' }] }), /duplicate client id/)
  })
})
