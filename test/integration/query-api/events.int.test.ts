/**
 * Audit search on the real Elasticsearch node: every filter returns exactly the matching seeded events, and
 * search_after pagination returns every event once while new events are being indexed.
 */
import assert from 'node:assert/strict'
import type { Client } from '@elastic/elasticsearch'
import { createKey } from '../../../lib/apikey.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { apiOnElasticsearch, deleteIndices, esClient, recordingAuditor, seedEvents, searchSeed } from '../../helpers/query-api.ts'

const seed = searchSeed

describe('audit search on the real Elasticsearch', function () {
  this.timeout(120_000)
  let es: Client
  let prefix: string
  let app: ReturnType<typeof apiOnElasticsearch>
  let key: string
  const events: AuditEvent[] = []
  const base = Date.UTC(2026, 10, 20)

  before(async () => {
    es = esClient(stack().esUrl)
    prefix = uniquePrefix().indexPrefix
    const k = await createKey()
    key = k.key
    events.push(...seed(300, base))
    await seedEvents(es, prefix, events)
    app = apiOnElasticsearch(es, prefix, { apiKeys: [{ id: k.id, hash: k.hash, roles: ['security'], owner: 'sec' }], maxPageSize: 500 }, recordingAuditor())
  })
  after(async () => {
    await app.close()
    await deleteIndices(es, prefix)
    await es.close()
  })

  async function search (qs: string): Promise<{ events: AuditEvent[], total: number, next?: string }> {
    const res = await app.inject({ method: 'GET', url: `/v1/events?case=T-1&size=500&${qs}`, headers: { authorization: `ApiKey ${key}` } })
    assert.equal(res.statusCode, 200, res.body)
    return res.json()
  }

  const ids = (es: AuditEvent[]): string[] => es.map(e => e.event.id).sort()

  const cases: Array<[string, string, (e: AuditEvent) => boolean]> = [
    ['user.name', 'user.name=anna', e => e.user?.name === 'anna'],
    ['two users', 'user.name=anna&user.name=bob', e => e.user?.name === 'anna' || e.user?.name === 'bob'],
    ['host.name', 'host.name=db01', e => e.host?.name === 'db01'],
    ['event.action', 'event.action=db_drop_database', e => e.event.action === 'db_drop_database'],
    ['event.outcome', 'event.outcome=failure', e => e.event.outcome === 'failure'],
    ['an IPv4 CIDR', 'source.ip=192.0.2.0/25', e => /^192\.0\.2\.(\d+)$/.test(e.source?.ip ?? '') && Number(e.source?.ip?.split('.')[3]) < 128],
    ['an IPv6 address', 'source.ip=2001:db8::3', e => e.source?.ip === '2001:db8::3'],
    ['a time range', `from=${new Date(base + 60 * 60_000).toISOString()}&to=${new Date(base + 120 * 60_000).toISOString()}`, e => Date.parse(e['@timestamp']) >= base + 60 * 60_000 && Date.parse(e['@timestamp']) < base + 120 * 60_000],
    ['combined filters', 'user.name=carol&host.name=web01&event.outcome=success', e => e.user?.name === 'carol' && e.host?.name === 'web01' && e.event.outcome === 'success']
  ]
  for (const [what, qs, match] of cases) {
    it(`returns exactly the events matching ${what}`, async () => {
      const expected = events.filter(match)
      assert.ok(expected.length > 0, 'the filter matches something')
      const page = await search(qs)
      assert.equal(page.total, expected.length)
      assert.deepEqual(ids(page.events), ids(expected))
    })
  }

  it('pages with search_after through every event exactly once while new events are indexed', async () => {
    const seen: string[] = []
    let after: string | undefined
    let extra = 0
    for (let guard = 0; guard < 100; guard++) {
      const res = await app.inject({ method: 'GET', url: `/v1/events?case=T-1&size=23&order=desc${after === undefined ? '' : `&after=${after}`}`, headers: { authorization: `ApiKey ${key}` } })
      const page = res.json<{ events: AuditEvent[], next?: string }>()
      seen.push(...page.events.map(e => e.event.id))
      // Newer events arrive between pages (they sort before the cursor and must not shift the pages).
      const newer = seed(5, base + 10 * 86_400_000 + extra * 300_000)
      extra++
      await seedEvents(es, prefix, newer)
      if (page.next === undefined) break
      after = page.next
    }
    const seeded = new Set(events.map(e => e.event.id))
    const seenSeeded = seen.filter(id => seeded.has(id))
    assert.equal(seenSeeded.length, events.length, 'every seeded event once')
    assert.equal(new Set(seenSeeded).size, events.length, 'no event twice')
  })
})
