import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { buildApp } from '../../../query-api/app.ts'
import { validate } from '../../../query-api/run.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import { isAuditError } from '../../../lib/errors.ts'
import type { ApiAuditInput, ApiAuditor } from '../../../query-api/audit.ts'
import type { EventStore, SiteScope } from '../../../query-api/store/types.ts'
import { inScope, siteScope } from '../../../query-api/tenants.ts'
import { mergeTop } from '../../../query-api/stats-series.ts'
import { statsRange } from '../../../query-api/routes/stats.ts'
import type { StatsDocument } from '../../../anonymizer/stats/record.ts'
import { statsDoc } from '../../helpers/stats-docs.ts'

const DOCS: StatsDocument[] = [
  statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 100, visitors: 10, top: { pages: [{ key: '/', count: 30 }, { key: '/cart', count: 5 }], browsers: [{ key: 'Firefox', count: 6 }] } }),
  statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-28T00:00:00Z', hits: 200, visitors: 20, top: { pages: [{ key: '/cart', count: 40 }, { key: '/', count: 3 }, { key: '/about', count: 3 }], browsers: [{ key: 'Chrome', count: 9 }] } }),
  statsDoc({ site: 'blog.a.example', granularity: 'day', start: '2026-11-28T00:00:00Z', hits: 7 }),
  statsDoc({ site: 'shop.b.example', granularity: 'day', start: '2026-11-28T00:00:00Z', hits: 999_999, top: { pages: [{ key: '/b-secret', count: 1 }] } })
]

describe('statistics feed (app.inject, fake store)', () => {
  const keys: Record<'a' | 'b' | 'admin' | 'sec', Awaited<ReturnType<typeof createKey>>> = {} as never
  let recorded: ApiAuditInput[] = []
  const calls: Array<{ method: string, args: unknown[] }> = []
  const auditor: ApiAuditor = { record: async (i) => { recorded.push(i) }, close: async () => {} }
  // The fake store honours the scope it is given the way the real one does (exact names and suffixes).
  const store: EventStore = {
    searchEvents: async () => ({ events: [], total: 0, totalIsLowerBound: false }),
    countEvents: async () => ({ buckets: [], total: 0, other: 0 }),
    listSites: async (scope: SiteScope, limit: number) => {
      calls.push({ method: 'listSites', args: [scope, limit] })
      const sites = [...new Set(DOCS.filter(d => inScope(scope, d.site)).map(d => d.site))].sort()
      return { sites: sites.map(site => ({ site, lastDay: { start: '2026-11-28T00:00:00.000Z', partial: false, hits: 1, pageviews: 1, visits: 1, visitors: 1 } })), truncated: false }
    },
    siteStats: async (site, q) => {
      calls.push({ method: 'siteStats', args: [site, q] })
      return DOCS.filter(d => d.site === site && d.granularity === q.granularity && d['@timestamp'] >= q.from && d['@timestamp'] < q.to).reverse()
    }
  }
  const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  let app: ReturnType<typeof buildApp>

  before(async () => {
    for (const k of ['a', 'b', 'admin', 'sec'] as const) keys[k] = await createKey()
    app = buildApp(validate({
      apiKeys: [
        { id: keys.a.id, hash: keys.a.hash, roles: ['stats'], owner: 'cust-a', tenant: 'tenant-a' },
        { id: keys.b.id, hash: keys.b.hash, roles: ['stats'], owner: 'cust-b', tenant: 'tenant-b' },
        { id: keys.admin.id, hash: keys.admin.hash, roles: ['admin'], owner: 'ops' },
        { id: keys.sec.id, hash: keys.sec.hash, roles: ['security'], owner: 'sec-alice' }
      ],
      tenants: [{ id: 'tenant-a', sites: ['shop.a.example', '*.a.example'] }, { id: 'tenant-b', sites: ['shop.b.example'] }],
      stats: { maxHourRangeDays: 7, maxDayRangeDays: 60 }
    }), { store, auditor, log })
  })
  beforeEach(() => { recorded = []; calls.length = 0 })
  after(async () => { await app.close() })

  const get = (url: string, k?: keyof typeof keys) => app.inject({ method: 'GET', url, headers: k === undefined ? {} : { authorization: `ApiKey ${keys[k].key}` } })

  it('lists only the caller tenant\'s sites, and nothing of another tenant', async () => {
    const res = await get('/v1/stats/sites', 'a')
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json<{ sites: Array<{ site: string }> }>().sites.map(s => s.site), ['blog.a.example', 'shop.a.example'])
    assert.doesNotMatch(res.body, /b\.example|999999/)
    assert.deepEqual(calls[0]?.args[0], { all: false, exact: ['shop.a.example'], suffixes: ['.a.example'] })
    assert.equal(recorded[0]?.action, 'api_stats')
    assert.equal(recorded[0]?.results, 2)
  })

  it('answers 404 for another tenant\'s site, exactly as for a site nobody has, without asking the store', async () => {
    const foreign = await get('/v1/stats/sites/shop.b.example', 'a')
    const nobody = await get('/v1/stats/sites/shop.nowhere.example', 'a')
    assert.equal(foreign.statusCode, 404)
    assert.equal(nobody.statusCode, 404)
    assert.deepEqual(Object.keys(foreign.json<object>()), Object.keys(nobody.json<object>()))
    assert.equal(foreign.json<{ error: string }>().error, 'AUD_ERR_API_NOT_FOUND')
    assert.doesNotMatch(foreign.body, /999999|b-secret/)
    assert.equal(calls.length, 0, 'the store was not asked')
    assert.equal(recorded[0]?.action, 'api_refused')
    assert.equal(recorded[0]?.status, 404)
  })

  it('matches *.domain entries on subdomains only, not the domain itself or look-alike names', () => {
    const scope = siteScope({ keyId: 'x', owner: 'o', roles: ['stats'], tenant: 't' }, [{ id: 't', sites: ['*.a.example'] }])
    assert.ok(scope !== undefined)
    assert.ok(inScope(scope, 'blog.a.example'))
    assert.ok(inScope(scope, 'x.y.A.Example'))
    assert.ok(!inScope(scope, 'a.example'))
    assert.ok(!inScope(scope, 'evila.example'))
    assert.ok(!inScope(scope, 'a.example.evil'))
  })

  it('lets admin read every site and refuses the statistics to other roles (403)', async () => {
    assert.equal((await get('/v1/stats/sites/shop.b.example?from=2026-11-01&to=2026-12-01', 'admin')).statusCode, 200)
    const all = await get('/v1/stats/sites', 'admin')
    assert.equal(all.json<{ sites: unknown[] }>().sites.length, 3)
    assert.equal((await get('/v1/stats/sites', 'sec')).statusCode, 403)
    assert.equal((await get('/v1/stats/sites/shop.a.example', 'sec')).statusCode, 403)
    assert.equal((await get('/v1/stats/sites')).statusCode, 401)
  })

  it('serves a time-ordered series with totals and top lists merged over the range', async () => {
    const res = await get('/v1/stats/sites/shop.a.example?granularity=day&from=2026-11-27&to=2026-11-29&top=2', 'a')
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json<{ from: string, to: string, series: Array<{ start: string, hits: number, visitors: number, partial: boolean }>, totals: { hits: number }, top: Record<string, Array<{ key: string, count: number }>> }>()
    assert.equal(body.from, '2026-11-27T00:00:00.000Z')
    assert.equal(body.to, '2026-11-29T00:00:00.000Z')
    assert.deepEqual(body.series.map(p => [p.start, p.hits, p.visitors, p.partial]), [['2026-11-27T00:00:00.000Z', 100, 10, false], ['2026-11-28T00:00:00.000Z', 200, 20, false]])
    assert.equal(body.totals.hits, 300)
    assert.deepEqual(body.top.pages, [{ key: '/cart', count: 45 }, { key: '/', count: 33 }])
    assert.deepEqual(body.top.browsers, [{ key: 'Chrome', count: 9 }, { key: 'Firefox', count: 6 }])
    assert.deepEqual(body.top.devices, [])
    const q = calls[0]?.args[1] as { limit: number, granularity: string }
    assert.equal(q.granularity, 'day')
    assert.equal(q.limit, 3, 'the store is asked for at most the buckets of the range')
    assert.equal(recorded[0]?.action, 'api_stats')
    assert.deepEqual(recorded[0]?.query, { site: 'shop.a.example', granularity: 'day', from: body.from, to: body.to, top: 2 })
  })

  it('rejects bad granularity, dates, ranges and parameters with a message naming the parameter', async () => {
    for (const [url, param] of [
      ['/v1/stats/sites/shop.a.example?granularity=week', 'granularity'],
      ['/v1/stats/sites/shop.a.example?from=yesterday', 'from'],
      ['/v1/stats/sites/shop.a.example?to=2026-02-30T00:00:00Zx', 'to'],
      ['/v1/stats/sites/shop.a.example?granularity=hour&from=2026-11-01&to=2026-11-20', 'from'],
      ['/v1/stats/sites/shop.a.example?from=2025-01-01&to=2026-01-01', 'from'],
      ['/v1/stats/sites/shop.a.example?from=2026-11-20&to=2026-11-01', 'to'],
      ['/v1/stats/sites/shop.a.example?top=1000', 'top'],
      ['/v1/stats/sites/shop.a.example?site[$ne]=x', 'site[$ne]'],
      ['/v1/stats/sites/shop.a.example?granularity={"match_all":{}}', 'granularity'],
      ['/v1/stats/sites/%7B%22match_all%22%3A%7B%7D%7D', 'site']
    ] as const) {
      const res = await get(url, 'a')
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`)
      assert.ok(res.json<{ message: string }>().message.includes(param), `${url}: ${res.body}`)
    }
    assert.equal(calls.length, 0, 'nothing reached the store')
  })

  it('defaults to the last 30 days (day) or 48 hours (hour), up to the end of the current bucket', () => {
    const now = Date.parse('2026-11-29T12:34:56Z')
    const limits = { maxHourRangeDays: 7, maxDayRangeDays: 60 }
    assert.deepEqual(statsRange({ granularity: 'day' }, limits, now), { from: Date.parse('2026-10-31T00:00:00Z'), to: Date.parse('2026-11-30T00:00:00Z'), maxBuckets: 31 })
    assert.deepEqual(statsRange({ granularity: 'hour' }, limits, now), { from: Date.parse('2026-11-27T13:00:00Z'), to: Date.parse('2026-11-29T13:00:00Z'), maxBuckets: 49 })
    assert.equal(statsRange({ granularity: 'hour', from: '2026-11-29', to: '2026-11-29T06:30:00+01:00' }, limits, now).maxBuckets, 7)
  })

  it('merges top lists by summing counts, most frequent first, ties by key', () => {
    assert.deepEqual(mergeTop([[{ key: 'b', count: 2 }, { key: 'a', count: 1 }], [{ key: 'a', count: 1 }, { key: 'c', count: 2 }]], 3),
      [{ key: 'a', count: 2 }, { key: 'b', count: 2 }, { key: 'c', count: 2 }])
    assert.deepEqual(mergeTop([], 5), [])
  })

  it('refuses a configuration where a stats key names no listed tenant', () => {
    const k = { id: 'abcd', hash: keys.a.hash, roles: ['stats'], owner: 'x' }
    for (const cfg of [{ apiKeys: [k] }, { apiKeys: [{ ...k, tenant: 'ghost' }], tenants: [{ id: 't', sites: ['a.example'] }] }]) {
      assert.throws(() => validate(cfg), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /apiKeys\[0\]\.tenant/.test(err.message))
    }
    assert.throws(() => validate({ tenants: [{ id: 't', sites: ['Shop.Example'] }] }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    assert.throws(() => validate({ tenants: [{ id: 't', sites: ['*'] }] }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    assert.doesNotThrow(() => validate({ apiKeys: [{ ...k, roles: ['stats', 'admin'] }] }))
  })
})
