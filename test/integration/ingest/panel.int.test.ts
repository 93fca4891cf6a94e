import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createKafka, ensureTopics } from '../../../lib/kafka.ts'
import { eventId, verifyEventHash, type AuditEvent } from '../../../lib/ecs.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { startAll, startPanelIntake } from '../../../cli/pipeline.ts'
import type { Ctx } from '../../../lib/component.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'

type Key = Awaited<ReturnType<typeof createKey>>

// One time for every change of the run: a retry must resend identical content (else 409).
const NOW = new Date().toISOString()

function staffChange (id: string, ticket: string): Record<string, unknown> {
  return {
    id,
    timestamp: NOW,
    actor: { kind: 'staff', id: 'staff-17', name: 'anna.support' },
    customer: 'cust-4711',
    object: { type: 'dns_record', id: 'example.org/MX/10' },
    action: 'update',
    changed_fields: ['priority', 'target'],
    ticket_id: ticket,
    source_ip: '2001:db8:17::5',
    reason: 'customer asked to move mail to the new cluster'
  }
}

async function post (url: string, key: Key, body: unknown): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/panel-events`, {
    method: 'POST',
    headers: { authorization: `ApiKey ${key.key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}

describe('panel intake against real Kafka (and the whole pipeline)', function () {
  this.timeout(60_000)
  let dir: string
  let key: Key
  const logged: string[] = []
  const closers: Array<() => Promise<void>> = []

  function ctx (): Ctx {
    const log = createLogger({ level: 'info', destination: new Writable({ write (c, _e, cb) { logged.push(String(c)); cb() } }) })
    return { log, signal: new AbortController().signal, metrics: new Registry() }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-panel-int-'))
    key = await createKey()
  })
  after(async () => {
    // Close in reverse start order, even when a test failed half-way.
    for (const close of closers.reverse()) await close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('answers 202 only after Kafka acknowledged, and the event is in <prefix>audit.panel.v1', async () => {
    const { topicPrefix } = uniquePrefix()
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      panel: { port: 0, stateDir: join(dir, 'state-a'), clients: [{ id: key.id, hash: key.hash, name: 'panel test' }] }
    })
    const admin = createKafka(cfg.kafka, ctx().log).admin()
    await admin.connect()
    try { await ensureTopics(admin, cfg.kafka, ['panel']) } finally { await admin.disconnect() }
    const intake = await startPanelIntake(cfg, ctx())
    closers.push(() => intake.close())

    const res = await post(intake.url, key, staffChange('chg-int-1', 'OPS-1001'))
    assert.equal(res.status, 202, JSON.stringify(res.body))
    assert.equal(res.body.event_id, eventId('panel', key.id, 'chg-int-1'))
    // A retry of the same change: same id and sequence (the consumer below sees two identical messages).
    const retry = await post(intake.url, key, staffChange('chg-int-1', 'OPS-1001'))
    assert.equal(retry.status, 202)
    assert.deepEqual(retry.body, res.body)

    const topic = `${topicPrefix}audit.panel.v1`
    const msgs = await consumeUntil([topic], all => all.length >= 2, 20_000)
    assert.equal(msgs.length, 2)
    assert.equal(msgs[0]?.message.key?.toString(), 'cust-4711', 'partitioned by customer')
    const [e, again] = values<AuditEvent>(msgs)
    assert.ok(e !== undefined)
    assert.deepEqual(again, e, 'the retry produced the identical event')
    assert.equal(e.panel?.ticket_id, 'OPS-1001')
    assert.equal(e.panel?.actor_kind, 'staff')
    assert.equal(e.panel?.client, key.id)
    assert.equal(e.event.sequence, 0)
    assert.equal(e.event.reason, 'customer asked to move mail to the new cluster')
    assert.ok(verifyEventHash(e).ok)

    const refused = await post(intake.url, key, { ...staffChange('chg-int-2', 'x'), ticket_id: undefined })
    assert.equal(refused.status, 422)
    assert.match(String(refused.body.message), /ticket_id is required/)
  })

  it('answers 503, never 2xx, when Kafka does not acknowledge (topic missing)', async () => {
    const { topicPrefix } = uniquePrefix() // no topics created under this prefix; auto-creation is off
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix, requestTimeoutMs: 1000 },
      panel: { port: 0, stateDir: join(dir, 'state-b'), ackTimeoutMs: 1500, clients: [{ id: key.id, hash: key.hash, name: 'panel test' }] }
    })
    const intake = await startPanelIntake(cfg, ctx())
    closers.push(() => intake.close())
    const res = await post(intake.url, key, staffChange('chg-int-3', 'OPS-1003'))
    assert.equal(res.status, 503)
    assert.equal(res.body.error, 'AUD_ERR_PANEL_UNAVAILABLE')
  })

  it('makes a staff change searchable by ticket through the query API (startAll with panel clients)', async () => {
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const reader = await createKey()
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints') },
      indexer: { groupId: `${topicPrefix}indexer` },
      queryApi: { port: 0, apiKeys: [{ id: reader.id, hash: reader.hash, roles: ['security'], owner: 'test' }] },
      panel: { port: 0, stateDir: join(dir, 'state-c'), clients: [{ id: key.id, hash: key.hash, name: 'panel test' }] }
    })
    const running = await startAll(cfg, ctx())
    closers.push(() => running.close())
    assert.ok(running.panel !== undefined, 'startAll starts the intake when panel.clients is set')

    const ticket = `OPS-${Date.now()}`
    const res = await post(running.panel.url, key, staffChange('chg-int-4', ticket))
    assert.equal(res.status, 202, JSON.stringify(res.body))

    const page = await waitFor('the panel event to be searchable by ticket', async () => {
      const r = await fetch(`${running.url}/v1/events?ticket=${encodeURIComponent(ticket)}&reason=panel+test`, { headers: { authorization: `ApiKey ${reader.key}` } })
      assert.equal(r.status, 200)
      const p = await r.json() as { events: AuditEvent[], total: number }
      return p.total > 0 ? p : undefined
    }, 30_000, 500)
    assert.equal(page.total, 1)
    const e = page.events[0] as AuditEvent
    assert.equal(e.event.id, eventId('panel', key.id, 'chg-int-4'))
    assert.equal(e.auditline.class, 'panel')
    assert.equal(e.user?.name, 'anna.support')
    assert.equal(e.source?.ip, '2001:db8:17::5')
    assert.deepEqual(e.panel?.changed_fields, ['priority', 'target'])
    assert.ok(e.event.ingested !== undefined)

    // Customer filter and the actor's name find it too.
    const byCustomer = await fetch(`${running.url}/v1/events?customer=cust-4711&user.name=anna.support&reason=panel+test`, { headers: { authorization: `ApiKey ${reader.key}` } })
    assert.equal((await byCustomer.json() as { total: number }).total, 1)

    // The service log never carries the source IP the panel reported.
    assert.ok(!logged.join('').includes('2001:db8:17::5'), 'source IP leaked into the service log')
  })
})
