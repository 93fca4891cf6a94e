/**
 * The statistics feed and event counts against the real Elasticsearch node: statistics documents of two
 * tenants' sites and audit events are written where the indexer writes them (under the project's templates);
 * the API on the real store serves series, merged top lists and counts, and keeps the tenants apart.
 */
import assert from 'node:assert/strict'
import type { Client } from '@elastic/elasticsearch'
import { createKey } from '../../../lib/apikey.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { statsDoc } from '../../helpers/stats-docs.ts'
import { apiOnElasticsearch, auditEvent, deleteIndices, esClient, recordingAuditor, seedEvents, seedStats } from '../../helpers/query-api.ts'

describe('statistics feed and counts on Elasticsearch', function () {
  this.timeout(60_000)
  const { indexPrefix } = uniquePrefix()
  let es: Client
  let app: ReturnType<typeof apiOnElasticsearch>
  const auditor = recordingAuditor()
  const keys: Record<'a' | 'b' | 'admin' | 'sec', Awaited<ReturnType<typeof createKey>>> = {} as never

  before(async () => {
    es = esClient(stack().esUrl)
    for (const k of ['a', 'b', 'admin', 'sec'] as const) keys[k] = await createKey()
    await seedStats(es, indexPrefix, [
      // Tenant A: shop.a.example (exact) and blog.a.example (through *.a.example); three days and some hours.
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-26T00:00:00Z', hits: 90, visitors: 9, pageviews: 40, top: { pages: [{ key: '/', count: 30 }, { key: '/cart', count: 10 }], browsers: [{ key: 'Firefox', count: 5 }, { key: 'Chrome', count: 2 }], referrer_domains: [{ key: 'search.example', count: 7 }] } }),
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 120, visitors: 12, pageviews: 60, top: { pages: [{ key: '/cart', count: 35 }, { key: '/', count: 25 }], browsers: [{ key: 'Chrome', count: 8 }], referrer_domains: [{ key: 'news.example', count: 9 }, { key: 'search.example', count: 1 }] } }),
      statsDoc({ site: 'shop.a.example', granularity: 'day', start: '2026-11-28T00:00:00Z', hits: 150, visitors: 15, pageviews: 70, partial: true, top: { pages: [{ key: '/checkout', count: 70 }] } }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T09:00:00Z', hits: 40, visitors: 4 }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T08:00:00Z', hits: 30, visitors: 3 }),
      statsDoc({ site: 'shop.a.example', granularity: 'hour', start: '2026-11-28T11:00:00Z', hits: 50, visitors: 5 }),
      statsDoc({ site: 'blog.a.example', granularity: 'hour', start: '2026-11-28T10:00:00Z', hits: 3, visitors: 1 }),
      // Tenant B: a site whose name contains tenant A's domain as a non-suffix, and its own shop.
      statsDoc({ site: 'shop.b.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 777_777, visitors: 7_777, top: { pages: [{ key: '/b-only-page', count: 5 }] } }),
      statsDoc({ site: 'a.example.b.example', granularity: 'day', start: '2026-11-27T00:00:00Z', hits: 5 })
    ])
    await seedEvents(es, indexPrefix, [
      auditEvent({ at: '2026-11-27T08:00:00Z', action: 'ssh_login', user: 'anna', host: 'web01' }),
      auditEvent({ at: '2026-11-27T09:00:00Z', action: 'ssh_login', user: 'anna', host: 'web02' }),
      auditEvent({ at: '2026-11-28T10:00:00Z', action: 'ssh_login_failed', user: 'bob', host: 'web01', outcome: 'failure' }),
      auditEvent({ at: '2026-11-28T11:00:00Z', action: 'ftp_upload', user: 'anna', host: 'ftp01', eventClass: 'ftp', category: ['file'] }),
      auditEvent({ at: '2026-11-30T11:00:00Z', action: 'ssh_login', user: 'carl', host: 'web01' })
    ])
    app = apiOnElasticsearch(es, indexPrefix, {
      apiKeys: [
        { id: keys.a.id, hash: keys.a.hash, roles: ['stats'], owner: 'cust-a', tenant: 'tenant-a' },
        { id: keys.b.id, hash: keys.b.hash, roles: ['stats'], owner: 'cust-b', tenant: 'tenant-b' },
        { id: keys.admin.id, hash: keys.admin.hash, roles: ['admin'], owner: 'ops' },
        { id: keys.sec.id, hash: keys.sec.hash, roles: ['security'], owner: 'sec-alice' }
      ],
      tenants: [
        { id: 'tenant-a', sites: ['shop.a.example', '*.a.example'] },
        { id: 'tenant-b', sites: ['shop.b.example', 'a.example.b.example'] }
      ]
    }, auditor)
    await app.ready()
  })

  after(async () => {
    await app?.close()
    if (es !== undefined) {
      await deleteIndices(es, indexPrefix)
      await es.close()
    }
  })

  beforeEach(() => { auditor.recorded.length = 0 })

  const get = async <T>(url: string, k: keyof typeof keys): Promise<{ status: number, body: T, text: string }> => {
    const res = await app.inject({ method: 'GET', url, headers: { authorization: `ApiKey ${keys[k].key}` } })
    return { status: res.statusCode, body: res.json<T>(), text: res.body }
  }

  type Sites = { sites: Array<{ site: string, lastDay?: { start: string, partial: boolean, hits: number, visitors: number } }>, truncated: boolean }

  it('lists tenant A\'s sites (exact and wildcard) with the newest day, and none of tenant B', async () => {
    const r = await get<Sites>('/v1/stats/sites', 'a')
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.body.sites.map(s => s.site), ['blog.a.example', 'shop.a.example'])
    assert.deepEqual(r.body.sites[1]?.lastDay, { start: '2026-11-28T00:00:00.000Z', partial: true, hits: 150, pageviews: 70, visits: 22, visitors: 15 })
    assert.equal(r.body.sites[0]?.lastDay, undefined, 'blog has hour documents only')
    assert.doesNotMatch(r.text, /b\.example|777777/)
    const b = await get<Sites>('/v1/stats/sites', 'b')
    assert.deepEqual(b.body.sites.map(s => s.site), ['a.example.b.example', 'shop.b.example'])
    const all = await get<Sites>('/v1/stats/sites', 'admin')
    assert.equal(all.body.sites.length, 4)
    assert.ok(auditor.recorded.every(r => r.action === 'api_stats'))
  })

  it('answers 404 to tenant A for tenant B\'s sites and 403 to a security key', async () => {
    for (const site of ['shop.b.example', 'a.example.b.example']) {
      const r = await get<{ error: string }>(`/v1/stats/sites/${site}?from=2026-11-01&to=2026-12-01`, 'a')
      assert.equal(r.status, 404, site)
      assert.equal(r.body.error, 'AUD_ERR_API_NOT_FOUND')
      assert.doesNotMatch(r.text, /777777|b-only-page/)
    }
    assert.equal((await get('/v1/stats/sites/shop.a.example', 'sec')).status, 403)
    const mine = await get<{ series: unknown[] }>('/v1/stats/sites/shop.b.example?from=2026-11-01&to=2026-12-01', 'b')
    assert.equal(mine.status, 200)
    assert.equal(mine.body.series.length, 1)
  })

  it('serves the daily series in time order with merged top lists', async () => {
    type Reply = { series: Array<{ start: string, end: string, hits: number, pageviews: number, visitors: number, partial: boolean, status: Record<string, number> }>, totals: { hits: number, pageviews: number }, top: Record<string, Array<{ key: string, count: number }>> }
    const r = await get<Reply>('/v1/stats/sites/shop.a.example?granularity=day&from=2026-11-26&to=2026-11-29', 'a')
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.body.series.map(p => [p.start, p.hits, p.pageviews, p.visitors, p.partial]), [
      ['2026-11-26T00:00:00.000Z', 90, 40, 9, false],
      ['2026-11-27T00:00:00.000Z', 120, 60, 12, false],
      ['2026-11-28T00:00:00.000Z', 150, 70, 15, true]
    ])
    assert.equal(r.body.series[0]?.end, '2026-11-27T00:00:00.000Z')
    assert.deepEqual(r.body.totals, { hits: 360, pageviews: 170, visits: 13 + 18 + 22, bytes: 360_000, status: { '2xx': 328, '3xx': 17, '4xx': 13, '5xx': 2, other: 0 } })
    assert.deepEqual(r.body.top.pages, [{ key: '/checkout', count: 70 }, { key: '/', count: 55 }, { key: '/cart', count: 45 }])
    assert.deepEqual(r.body.top.browsers, [{ key: 'Chrome', count: 10 }, { key: 'Firefox', count: 5 }])
    assert.deepEqual(r.body.top.referrer_domains, [{ key: 'news.example', count: 9 }, { key: 'search.example', count: 8 }])
    // The range is half-open: a to of the 28th leaves the 28th out.
    const shorter = await get<Reply>('/v1/stats/sites/shop.a.example?granularity=day&from=2026-11-26&to=2026-11-28', 'a')
    assert.equal(shorter.body.series.length, 2)
    assert.deepEqual(auditor.recorded.map(x => [x.action, x.results]), [['api_stats', 3], ['api_stats', 2]])
  })

  it('serves the hourly series of a range and nothing of the other granularity', async () => {
    type Reply = { series: Array<{ start: string, hits: number }> }
    const r = await get<Reply>('/v1/stats/sites/shop.a.example?granularity=hour&from=2026-11-28T08:00:00Z&to=2026-11-28T11:00:00Z', 'a')
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.body.series.map(p => [p.start, p.hits]), [['2026-11-28T08:00:00.000Z', 30], ['2026-11-28T09:00:00.000Z', 40]])
    const blog = await get<Reply>('/v1/stats/sites/blog.a.example?granularity=hour&from=2026-11-28&to=2026-11-29', 'a')
    assert.deepEqual(blog.body.series.map(p => p.hits), [3])
  })

  it('counts events by action, user, host and day from the event indices only', async () => {
    type Counts = { buckets: Array<{ key: string, count: number }>, total: number, other: number }
    const byAction = await get<Counts>('/v1/events/counts?by=event.action&case=INC-1', 'sec')
    assert.equal(byAction.status, 200, byAction.text)
    assert.deepEqual(byAction.body, { by: 'event.action', total: 5, other: 0, buckets: [{ key: 'ssh_login', count: 3 }, { key: 'ftp_upload', count: 1 }, { key: 'ssh_login_failed', count: 1 }] })
    const byUser = await get<Counts>('/v1/events/counts?by=user.name&size=1&host.name=web01&host.name=web02&case=INC-1', 'sec')
    assert.deepEqual(byUser.body, { by: 'user.name', total: 4, other: 2, buckets: [{ key: 'anna', count: 2 }] })
    const byHost = await get<Counts>('/v1/events/counts?by=host.name&user.name=anna&case=INC-1', 'sec')
    assert.deepEqual(byHost.body.buckets, [{ key: 'ftp01', count: 1 }, { key: 'web01', count: 1 }, { key: 'web02', count: 1 }])
    const byDay = await get<Counts & { from: string, to: string }>('/v1/events/counts?by=day&from=2026-11-26T00:00:00Z&to=2026-12-01T00:00:00Z&reason=weekly+review', 'sec')
    assert.deepEqual(byDay.body.buckets, [
      { key: '2026-11-26', count: 0 }, { key: '2026-11-27', count: 2 }, { key: '2026-11-28', count: 2 }, { key: '2026-11-29', count: 0 }, { key: '2026-11-30', count: 1 }
    ])
    assert.deepEqual(auditor.recorded.map(x => [x.action, x.route, x.results]), [
      ['api_search', '/v1/events/counts', 5], ['api_search', '/v1/events/counts', 4], ['api_search', '/v1/events/counts', 3], ['api_search', '/v1/events/counts', 5]
    ])
  })

  it('keeps statistics documents out of the event search', async () => {
    const r = await get<{ events: Array<{ event: { action: string } }>, total: number }>('/v1/events?case=INC-1&size=50', 'sec')
    assert.equal(r.status, 200, r.text)
    assert.equal(r.body.total, 5)
  })
})
