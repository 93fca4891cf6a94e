import assert from 'node:assert/strict'
import { decodeStatsMessage } from '../../../indexer/elasticsearch/stats.ts'
import { statsDocumentId, type StatsDocument } from '../../../anonymizer/stats/record.ts'
import { statsTemplate, STATS_MAPPINGS } from '../../../lib/stats-template.ts'
import { eventTemplate } from '../../../lib/elasticsearch.ts'

const pos = { topic: 'stats.web.v1', partition: 1, offset: '17' }
const now = new Date('2026-03-02T08:00:00Z')

function doc (over: Partial<StatsDocument> = {}): StatsDocument {
  const start = '2026-03-01T10:00:00.000Z'
  return {
    '@timestamp': start,
    id: statsDocumentId('www.example.test', 'hour', start),
    schema: 1,
    site: 'www.example.test',
    granularity: 'hour',
    period: { start, end: '2026-03-01T11:00:00.000Z' },
    partial: false,
    hits: 3,
    bytes: 300,
    pageviews: 1,
    visits: 1,
    visitors: 2,
    status: { '2xx': 3, '3xx': 0, '4xx': 0, '5xx': 0, other: 0 },
    humans: { hits: 2, visitors: 1 },
    bots: { hits: 1, visitors: 1 },
    top: { pages: [{ key: '/', count: 1 }], entry_pages: [{ key: '/', count: 1 }], referrer_domains: [], browsers: [{ key: 'Firefox', count: 1 }], os: [{ key: 'Linux', count: 1 }], devices: [{ key: 'desktop', count: 1 }] },
    ...over
  }
}

describe('indexer: statistics documents', () => {
  it('indexes a statistics document into <prefix>-stats-<UTC day of the bucket> under its own id', () => {
    const d = decodeStatsMessage(Buffer.from(JSON.stringify(doc())), pos, 'auditline', now)
    assert.ok('op' in d)
    assert.equal(d.op.index, 'auditline-stats-2026.03.01')
    assert.equal(d.op.id, doc().id)
    assert.deepEqual(d.op.doc, doc())
  })

  it('dead-letters a document whose id is not the one its site, granularity and start give', () => {
    const d = decodeStatsMessage(Buffer.from(JSON.stringify(doc({ id: 'f'.repeat(32) }))), pos, 'auditline', now)
    assert.ok('dead' in d)
    assert.equal(d.dead.code, 'AUD_ERR_EVENT_INVALID')
    assert.equal(d.dead.source.kafka_offset, '17')
  })

  it('dead-letters what is not JSON or not a statistics document, naming the field', () => {
    const notJson = decodeStatsMessage(Buffer.from('{'), pos, 'auditline', now)
    assert.ok('dead' in notJson && notJson.dead.code === 'AUD_ERR_INDEX_DECODE')
    const { hits: _h, ...noHits } = doc()
    const bad = decodeStatsMessage(Buffer.from(JSON.stringify(noHits)), pos, 'auditline', now)
    assert.ok('dead' in bad)
    assert.equal(bad.dead.code, 'AUD_ERR_EVENT_INVALID')
    assert.match(bad.dead.reason, /hits/)
    assert.ok('dead' in decodeStatsMessage(null, pos, 'auditline', now))
  })

  it('gives the stats template a higher priority than the event template whose pattern also matches', () => {
    const s = statsTemplate('auditline').body
    const e = eventTemplate('auditline').body
    assert.deepEqual(s.index_patterns, ['auditline-stats-*'])
    assert.ok((s.priority as number) > (e.priority as number))
  })

  it('maps every document field with core types only', () => {
    const types = new Set<string>()
    const walk = (props: Record<string, unknown>): void => {
      for (const v of Object.values(props)) {
        const f = v as { type?: string, properties?: Record<string, unknown> }
        if (f.properties !== undefined) walk(f.properties); else types.add(f.type as string)
      }
    }
    walk(STATS_MAPPINGS.properties)
    assert.deepEqual([...types].sort(), ['date', 'keyword', 'long'])
    const mapped = (path: string[]): boolean => {
      let node: Record<string, unknown> | undefined = STATS_MAPPINGS.properties
      for (const k of path) node = (node?.[k] as { properties?: Record<string, unknown> } | undefined)?.properties ?? (node?.[k] as Record<string, unknown> | undefined)
      return node !== undefined
    }
    const paths = (o: unknown, pre: string[] = []): string[][] => typeof o === 'object' && o !== null && !Array.isArray(o)
      ? Object.entries(o).flatMap(([k, v]) => paths(v, [...pre, k]))
      : [Array.isArray(o) ? [...pre, 'key'] : pre]
    for (const p of paths(doc())) assert.ok(mapped(p), `${p.join('.')} is not mapped`)
  })
})
