import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { buildApp } from '../../../query-api/app.ts'
import { validate } from '../../../query-api/run.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import { apiAuditEvent, type ApiAuditInput, type ApiAuditor } from '../../../query-api/audit.ts'
import { verifyEventHash } from '../../../lib/ecs.ts'
import type { EventFilter, EventStore } from '../../../query-api/store/types.ts'

describe('query API (app.inject, fake store, recording auditor)', () => {
  let key: Awaited<ReturnType<typeof createKey>>
  let statsKey: Awaited<ReturnType<typeof createKey>>
  const filters: EventFilter[] = []
  const store: EventStore = {
    searchEvents: async (f) => { filters.push(f); return { events: [], total: 0, totalIsLowerBound: false } },
    countEvents: async (f) => { filters.push(f); return { buckets: [], total: 0, other: 0 } },
    listSites: async () => ({ sites: [], truncated: false }),
    siteStats: async () => []
  }
  let recorded: ApiAuditInput[] = []
  let failAudit = false
  const auditor: ApiAuditor = {
    record: async (i) => { if (failAudit) throw new Error('kafka down'); recorded.push(i) },
    close: async () => {}
  }
  const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  let app: ReturnType<typeof buildApp>

  before(async () => {
    key = await createKey()
    statsKey = await createKey()
    app = buildApp(validate({ apiKeys: [{ id: key.id, hash: key.hash, roles: ['security'], owner: 'sec-alice' }, { id: statsKey.id, hash: statsKey.hash, roles: ['stats'], owner: 'cust', tenant: 't1' }], tenants: [{ id: 't1', sites: ['t1.example'] }] }), { store, auditor, log })
  })
  beforeEach(() => { recorded = []; failAudit = false; filters.length = 0 })
  after(async () => { await app.close() })

  const get = (url: string, k?: string) => app.inject({ method: 'GET', url, headers: k === undefined ? {} : { authorization: `ApiKey ${k}` } })

  it('refuses a search without a reason or case id, names the parameter, and records the refusal', async () => {
    const res = await get('/v1/events?user.name=anna', key.key)
    assert.equal(res.statusCode, 400)
    assert.match(res.json<{ message: string }>().message, /reason/)
    assert.equal(recorded[0]?.action, 'api_refused')
    assert.equal(recorded[0]?.status, 400)
    assert.equal(recorded[0]?.principal?.owner, 'sec-alice')
  })

  it('serves a justified search and records who searched what, why, and how many results', async () => {
    const res = await get('/v1/events?user.name=anna&source.ip=10.0.0.0/8&reason=incident+review', key.key)
    assert.equal(res.statusCode, 200)
    assert.deepEqual(filters[0], { user: ['anna'], sourceIp: '10.0.0.0/8' })
    assert.equal(recorded[0]?.action, 'api_search')
    assert.equal(recorded[0]?.reason, 'incident review')
    assert.equal(recorded[0]?.results, 0)
  })

  it('does not serve a search it cannot record (503)', async () => {
    failAudit = true
    const res = await get('/v1/events?case=INC-1', key.key)
    assert.equal(res.statusCode, 503)
    assert.equal(res.json<{ error: string }>().error, 'AUD_ERR_API_AUDIT')
  })

  it('answers 401 to a missing or unknown key and records it without a principal', async () => {
    assert.equal((await get('/v1/events?case=INC-1')).statusCode, 401)
    assert.equal((await get('/v1/events?case=INC-1', 'al_abcdef.' + 'x'.repeat(32))).statusCode, 401)
    assert.equal(recorded.length, 2)
    assert.equal(recorded[0]?.principal, undefined)
  })

  it('forbids a stats key to search audit events', async () => {
    assert.equal((await get('/v1/events?case=INC-1', statsKey.key)).statusCode, 403)
  })

  it('rejects operators, JSON, unknown parameters, huge pages and bad CIDRs instead of passing them on', async () => {
    for (const [url, param] of [
      ['/v1/events?case=X&user.name[$ne]=x', 'user.name[$ne]'],
      ['/v1/events?case=X&size=100000', 'size'],
      ['/v1/events?case=X&source.ip=10.0.0.0/99', 'source.ip'],
      ['/v1/events?case=X&source.ip={"match_all":{}}', 'source.ip'],
      ['/v1/events?case=X&from=yesterday', 'from'],
      ['/v1/events?case=X&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'to']
    ] as const) {
      const res = await get(url, key.key)
      assert.equal(res.statusCode, 400, url)
      assert.ok(res.json<{ message: string }>().message.includes(param), `${url}: ${res.body}`)
    }
    assert.equal(filters.length, 0, 'nothing reached the store')
  })

  it('builds a hashed, valid audit event with a deterministic id per sequence', () => {
    const input: ApiAuditInput = { action: 'api_search', outcome: 'success', route: '/v1/events', query: { user: ['anna'] }, status: 200, results: 3 }
    const a = apiAuditEvent(input, 'api-1', 5, new Date('2026-11-29T08:00:00Z'), 'req-1')
    const b = apiAuditEvent(input, 'api-1', 5, new Date('2026-11-29T08:00:00Z'), 'req-1')
    assert.equal(a.event.id, b.event.id)
    assert.equal(a.event.sequence, 5)
    assert.equal(a.auditline.class, 'api')
    assert.ok(verifyEventHash(a).ok)
  })
})
