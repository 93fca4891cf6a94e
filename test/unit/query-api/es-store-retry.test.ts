import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { errors, type Client } from '@elastic/elasticsearch'
import { ElasticsearchEventStore, searchWithRetry } from '../../../query-api/store/elasticsearch.ts'
import { isTransientSearchError, retryTransient } from '../../../lib/elasticsearch.ts'
import { buildApp } from '../../../query-api/app.ts'
import { validate } from '../../../query-api/run.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import { AuditError } from '../../../lib/errors.ts'

/** The answer Elasticsearch gives a search whose only shard has not started yet (a daily index created a moment ago). */
function allShardsFailed (): errors.ResponseError {
  return new errors.ResponseError({
    statusCode: 503,
    headers: {},
    warnings: null,
    meta: {} as never,
    body: { error: { type: 'search_phase_execution_exception', reason: 'all shards failed', root_cause: [], caused_by: { type: 'no_shard_available_action_exception', reason: null } }, status: 503 }
  })
}

function badQuery (): errors.ResponseError {
  return new errors.ResponseError({ statusCode: 400, headers: {}, warnings: null, meta: {} as never, body: { error: { type: 'parsing_exception', reason: 'unknown query [x]' }, status: 400 } })
}

describe('Elasticsearch store: transient failures', () => {
  it('tells passing failures (503 no shard, 429, connection, timeout) from a rejected query (400)', () => {
    assert.equal(isTransientSearchError(allShardsFailed()), true)
    assert.equal(isTransientSearchError(new errors.ResponseError({ statusCode: 429, headers: {}, warnings: null, meta: {} as never, body: {} })), true)
    assert.equal(isTransientSearchError(new errors.ConnectionError('socket hang up')), true)
    assert.equal(isTransientSearchError(new errors.TimeoutError('Request timed out')), true)
    assert.equal(isTransientSearchError(badQuery()), false)
    assert.equal(isTransientSearchError(new TypeError('bug')), false)
  })

  it('answers once a shard that had not started answers, after trying again', async () => {
    let calls = 0
    const got = await searchWithRetry(async () => { if (++calls < 3) throw allShardsFailed(); return 'hits' }, [1, 1, 1, 1])
    assert.equal(got, 'hits')
    assert.equal(calls, 3)
  })

  it('gives up after the last try with AUD_ERR_API_STORE_UNAVAILABLE (503) that names only the status', async () => {
    let calls = 0
    await assert.rejects(searchWithRetry(async () => { calls++; throw allShardsFailed() }, [1, 1]), (err: AuditError) => {
      assert.equal(err.code, 'AUD_ERR_API_STORE_UNAVAILABLE')
      assert.equal(err.status, 503)
      assert.match(err.message, /Elasticsearch answered 503/)
      return true
    })
    assert.equal(calls, 3)
  })

  it('retryTransient throws the last failure as it came (for readers outside the API, such as verify)', async () => {
    let calls = 0
    await assert.rejects(retryTransient(async () => { calls++; throw allShardsFailed() }, [1]), (err: unknown) => err instanceof errors.ResponseError && err.statusCode === 503)
    assert.equal(calls, 2)
  })

  it('does not try a rejected query again', async () => {
    let calls = 0
    await assert.rejects(searchWithRetry(async () => { calls++; throw badQuery() }, [1, 1]), /parsing_exception/)
    assert.equal(calls, 1)
  })

  it('asks Elasticsearch for complete answers only (no partial results when a shard fails)', async () => {
    const params: Array<Record<string, unknown>> = []
    const es = { search: async (p: Record<string, unknown>) => { params.push(p); return { hits: { hits: [], total: { value: 0, relation: 'eq' } }, aggregations: {} } } } as unknown as Client
    const store = new ElasticsearchEventStore(es, 'auditline')
    await store.searchEvents({}, { size: 10, order: 'desc' })
    await store.countEvents({}, 'user.name', { size: 10 })
    await store.listSites({ all: true }, 10)
    await store.siteStats('shop.example', { granularity: 'day', from: '2026-11-01T00:00:00Z', to: '2026-11-02T00:00:00Z', limit: 10 })
    assert.equal(params.length, 4)
    for (const p of params) assert.equal(p.allow_partial_search_results, false)
  })

  it('answers 503 with Retry-After through the API when the store stays unavailable', async () => {
    const key = await createKey()
    const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
    const unavailable = async (): Promise<never> => { throw new AuditError('AUD_ERR_API_STORE_UNAVAILABLE', ['Elasticsearch answered 503']) }
    const app = buildApp(validate({ apiKeys: [{ id: key.id, hash: key.hash, roles: ['security'], owner: 'sec-alice' }] }), {
      store: { searchEvents: unavailable, countEvents: unavailable, listSites: unavailable, siteStats: unavailable },
      auditor: { record: async () => {}, close: async () => {} },
      log
    })
    try {
      const res = await app.inject({ method: 'GET', url: '/v1/events?user.name=alice&reason=check', headers: { authorization: `ApiKey ${key.key}` } })
      assert.equal(res.statusCode, 503)
      assert.equal(res.headers['retry-after'], '1')
      assert.equal(res.json<{ error: string }>().error, 'AUD_ERR_API_STORE_UNAVAILABLE')
    } finally {
      await app.close()
    }
  })
})
