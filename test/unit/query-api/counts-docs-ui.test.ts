import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { buildApp } from '../../../query-api/app.ts'
import { validate } from '../../../query-api/run.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import type { ApiAuditInput, ApiAuditor } from '../../../query-api/audit.ts'
import type { CountBy, EventFilter, EventStore } from '../../../query-api/store/types.ts'
import { buildQuery, countAggregation, siteScopeQuery } from '../../../query-api/store/elasticsearch.ts'

describe('event counts, OpenAPI document and web UI (app.inject, fake store)', () => {
  let sec: Awaited<ReturnType<typeof createKey>>
  let stats: Awaited<ReturnType<typeof createKey>>
  let recorded: ApiAuditInput[] = []
  const counted: Array<{ filter: EventFilter, by: CountBy, opts: { size: number, from?: string, to?: string } }> = []
  const auditor: ApiAuditor = { record: async (i) => { recorded.push(i) }, close: async () => {} }
  const store: EventStore = {
    searchEvents: async () => ({ events: [], total: 0, totalIsLowerBound: false }),
    countEvents: async (filter, by, opts) => {
      counted.push({ filter, by, opts })
      return { buckets: [{ key: 'ssh_login', count: 3 }, { key: 'ftp_upload', count: 1 }], total: 5, other: 1 }
    },
    listSites: async () => ({ sites: [], truncated: false }),
    siteStats: async () => []
  }
  const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  let app: ReturnType<typeof buildApp>

  before(async () => {
    sec = await createKey()
    stats = await createKey()
    app = buildApp(validate({
      apiKeys: [
        { id: sec.id, hash: sec.hash, roles: ['security'], owner: 'sec-alice' },
        { id: stats.id, hash: stats.hash, roles: ['stats'], owner: 'cust', tenant: 't1' }
      ],
      tenants: [{ id: 't1', sites: ['t1.example'] }],
      maxRangeDays: 31
    }), { store, auditor, log })
  })
  beforeEach(() => { recorded = []; counted.length = 0 })
  after(async () => { await app.close() })

  const get = (url: string, key?: string) => app.inject({ method: 'GET', url, headers: key === undefined ? {} : { authorization: `ApiKey ${key}` } })

  describe('GET /v1/events/counts', () => {
    it('counts by a field with the search filters and records the search with its reason', async () => {
      const res = await get('/v1/events/counts?by=event.action&user.name=anna&host.name=web01&size=5&reason=weekly+review', sec.key)
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json(), { by: 'event.action', total: 5, other: 1, buckets: [{ key: 'ssh_login', count: 3 }, { key: 'ftp_upload', count: 1 }] })
      assert.deepEqual(counted[0], { filter: { user: ['anna'], host: ['web01'] }, by: 'event.action', opts: { size: 5 } })
      assert.equal(recorded[0]?.action, 'api_search')
      assert.equal(recorded[0]?.route, '/v1/events/counts')
      assert.equal(recorded[0]?.reason, 'weekly review')
      assert.equal(recorded[0]?.results, 5)
    })

    it('bounds day buckets by the range: without from, the last maxRangeDays days', async () => {
      const res = await get('/v1/events/counts?by=day&to=2026-11-29T00:00:00Z&case=INC-1', sec.key)
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(counted[0]?.opts, { size: 10, from: '2026-10-29T00:00:00.000Z', to: '2026-11-29T00:00:00Z' })
      assert.equal(counted[0]?.filter.from, '2026-10-29T00:00:00.000Z')
      assert.equal(res.json<{ from: string }>().from, '2026-10-29T00:00:00.000Z')
    })

    it('rejects a missing or unknown by, huge sizes, long ranges and a missing reason, naming the parameter', async () => {
      for (const [url, param] of [
        ['/v1/events/counts?case=X', 'by'],
        ['/v1/events/counts?case=X&by=event.original', 'by'],
        ['/v1/events/counts?case=X&by={"terms":{"field":"x"}}', 'by'],
        ['/v1/events/counts?case=X&by=user.name&size=100000', 'size'],
        ['/v1/events/counts?case=X&by=day&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z', 'to'],
        ['/v1/events/counts?case=X&by=user.name&after=abc', 'after'],
        ['/v1/events/counts?by=user.name', 'reason']
      ] as const) {
        const res = await get(url, sec.key)
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`)
        assert.ok(res.json<{ message: string }>().message.includes(param), `${url}: ${res.body}`)
      }
      assert.equal(counted.length, 0, 'nothing reached the store')
    })

    it('forbids a stats key to count audit events', async () => {
      assert.equal((await get('/v1/events/counts?by=user.name&case=X', stats.key)).statusCode, 403)
    })

    it('builds bounded aggregations from the typed argument only', () => {
      assert.deepEqual(countAggregation('user.name', { size: 7 }), { terms: { field: 'user.name', size: 7, order: [{ _count: 'desc' }, { _key: 'asc' }] } })
      const day = countAggregation('day', { size: 7, from: '2026-11-01T00:00:00Z', to: '2026-11-03T00:00:00Z' }) as { date_histogram: { extended_bounds: { min: number, max: number } } }
      assert.deepEqual(day.date_histogram.extended_bounds, { min: Date.parse('2026-11-01T00:00:00Z'), max: Date.parse('2026-11-03T00:00:00Z') - 1 })
    })
  })

  describe('store queries', () => {
    it('filters by session across the session fields and by stream', () => {
      const q = buildQuery({ session: 's-1', stream: 'web01/var/log/auth.log' }) as { bool: { filter: unknown[] } }
      assert.deepEqual(q.bool.filter, [
        { term: { 'auditline.stream': 'web01/var/log/auth.log' } },
        { bool: { should: [{ term: { 'ssh.session_id': 's-1' } }, { term: { 'ftp.session_id': 's-1' } }, { term: { 'db.connection_id': 's-1' } }], minimum_should_match: 1 } }
      ])
    })

    it('turns a tenant scope into exact and suffix clauses, and an empty scope into no match', () => {
      assert.deepEqual(siteScopeQuery({ all: false, exact: ['a.example'], suffixes: ['.b.example'] }), {
        bool: {
          should: [{ term: { site: { value: 'a.example', case_insensitive: true } } }, { wildcard: { site: { value: '*.b.example', case_insensitive: true } } }],
          minimum_should_match: 1
        }
      })
      assert.deepEqual(siteScopeQuery({ all: false, exact: [], suffixes: [] }), { bool: { must_not: { match_all: {} } } })
      assert.deepEqual(siteScopeQuery({ all: true }), { match_all: {} })
    })
  })

  describe('OpenAPI document', () => {
    it('serves a public OpenAPI 3 document listing every route with its parameters', async () => {
      const res = await get('/docs/openapi.json')
      assert.equal(res.statusCode, 200)
      const doc = res.json<{ openapi: string, info: { title: string, version: string }, paths: Record<string, Record<string, { responses?: object, parameters?: Array<{ name: string, in: string, required?: boolean }>, security?: unknown[] }>>, components: { securitySchemes: object } }>()
      assert.match(doc.openapi, /^3\.0\.\d+$/)
      assert.ok(doc.info.title !== '' && doc.info.version !== '')
      assert.deepEqual(Object.keys(doc.paths).sort(), ['/healthz', '/v1/events', '/v1/events/counts', '/v1/exports', '/v1/exports/{id}', '/v1/exports/{id}/bundle', '/v1/stats/sites', '/v1/stats/sites/{site}'])
      for (const [path, methods] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(methods)) {
          // Starting an evidence export is the one POST; everything else only reads.
          assert.equal(method, path === '/v1/exports' ? 'post' : 'get')
          assert.ok(op.responses !== undefined, `${path} has responses`)
          for (const p of op.parameters ?? []) assert.ok(['query', 'path'].includes(p.in), `${path} ${p.name}`)
          // Every {param} of the path is declared as a required path parameter (OpenAPI 3.0 §4.7.12).
          for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) assert.ok(op.parameters?.some(p => p.name === name && p.in === 'path' && p.required === true), `${path} declares ${name}`)
        }
      }
      const site = doc.paths['/v1/stats/sites/{site}']?.get?.parameters ?? []
      assert.deepEqual(site.map(p => [p.name, p.required]).sort(), [['from', false], ['granularity', false], ['site', true], ['to', false], ['top', false]])
      assert.ok(doc.paths['/v1/events']?.get?.parameters?.some(p => p.name === 'reason'))
      assert.ok(doc.paths['/v1/events/counts']?.get?.parameters?.some(p => p.name === 'by' && p.required === true))
      assert.deepEqual(doc.paths['/healthz']?.get?.security, [])
      assert.ok('apiKey' in doc.components.securitySchemes)
    })

    it('serves /docs as an HTML reference without authentication', async () => {
      const res = await get('/docs')
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/html/)
      assert.match(res.body, /GET \/v1\/stats\/sites\/\{site\}/)
      assert.match(res.body, /granularity/)
      assert.doesNotMatch(res.body, /<script/)
    })
  })

  describe('web UI', () => {
    it('serves its static files publicly, with a CSP that allows no inline script', async () => {
      const page = await get('/')
      assert.equal(page.statusCode, 200)
      assert.match(String(page.headers['content-type']), /^text\/html/)
      const csp = String(page.headers['content-security-policy'])
      assert.match(csp, /script-src 'self'/)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
      // Every script is an external file: no inline script and no inline handler attribute.
      assert.deepEqual([...page.body.matchAll(/<script[^>]*>/g)].map(m => m[0]), ['<script type="module" src="/ui/app.js">'])
      assert.doesNotMatch(page.body, /\son[a-z]+=|style=/)
      const js = await get('/ui/app.js')
      assert.equal(js.statusCode, 200)
      assert.match(String(js.headers['content-type']), /^text\/javascript/)
      assert.doesNotMatch(js.body, /innerHTML|eval\(|new Function/)
      assert.equal((await get('/ui/app.css')).statusCode, 200)
      assert.equal(recorded.length, 0, 'static files are not audited requests')
    })

    it('keeps data calls authenticated and uncached', async () => {
      assert.equal((await get('/v1/stats/sites')).statusCode, 401)
      const res = await get('/v1/stats/sites', stats.key)
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['cache-control'], 'no-store')
    })

    it('does not serve files outside its list', async () => {
      for (const url of ['/ui/../app.ts', '/ui/%2e%2e/config.ts', '/ui/index.html', '/query-api/ui/app.js']) {
        assert.ok([401, 404].includes((await get(url)).statusCode), url)
      }
    })
  })
})
