import assert from 'node:assert/strict'
import fc from 'fast-check'
import { assertAnonymized, type AnonymizedAccess } from '../../../anonymizer/record.ts'
import { StatsAggregator, aggregateAll, isPageview, isStaticPath, externalReferrerHost, statusClass, OTHER_KEY, type AggregatorOptions } from '../../../anonymizer/stats/aggregate.ts'
import { assertStatsDocument, statsDocumentId, type StatsDocument } from '../../../anonymizer/stats/record.ts'
import { DEFAULT_STATIC_EXTENSIONS } from '../../../anonymizer/stats/config.ts'

const MIN = 60_000
const OPTS: AggregatorOptions = {
  allowedLatenessMs: 5 * MIN,
  graceMs: 60 * MIN,
  sessionGapMs: 30 * MIN,
  maxOpenBuckets: 1000,
  topN: 10,
  maxKeysPerList: 1000,
  staticExtensions: DEFAULT_STATIC_EXTENSIONS
}
const STATIC = new Set(DEFAULT_STATIC_EXTENSIONS)

const FIREFOX = { name: 'Firefox', os: 'Linux', device: 'desktop' }
const SAFARI_IOS = { name: 'Safari', os: 'iOS', device: 'mobile' }
const GOOGLEBOT = { name: 'Chrome', os: 'Android', device: 'bot' }

let seq = 0
interface R { t: string, visitor?: string, site?: string, method?: string, status?: number, path?: string, query?: string, ref?: string, ua?: typeof FIREFOX, bytes?: number }

/** A hand-made anonymized record, checked against the real schema. */
function rec (r: R): AnonymizedAccess {
  const ua = r.ua ?? FIREFOX
  const a: AnonymizedAccess = {
    '@timestamp': new Date(r.t).toISOString(),
    ecs: { version: '8.17.0' },
    event: { id: (seq++).toString(16).padStart(32, '0'), sequence: seq, kind: 'event', category: ['web'], type: ['access'], dataset: 'web.access' },
    auditline: { schema: 1, stream: 'web-1/site', class: 'web', format: 'combined', epoch: Math.floor(Date.parse(r.t) / 86_400_000) },
    host: { name: 'web-1' },
    source: { address: '203.0.113.9', ip: '203.0.113.9' },
    url: { path: r.path ?? '/', ...(r.query === undefined ? {} : { query: r.query }), domain: r.site ?? 'www.example.test' },
    http: {
      version: '1.1',
      request: { method: r.method ?? 'GET', ...(r.ref === undefined ? {} : { referrer: r.ref }) },
      response: { status_code: r.status ?? 200, body: { bytes: r.bytes ?? 100 } }
    },
    user_agent: { original: `UA ${ua.name}`, name: ua.name, os: { name: ua.os }, device: { type: ua.device } },
    web: { site: r.site ?? 'www.example.test', visitor_id: Buffer.from(r.visitor ?? 'a').toString('hex').padEnd(32, '0').slice(0, 32), bot: ua.device === 'bot' }
  }
  assertAnonymized(a)
  return a
}

const find = (docs: StatsDocument[], granularity: 'hour' | 'day', start: string, site = 'www.example.test'): StatsDocument => {
  const d = docs.find(x => x.granularity === granularity && x.period.start === new Date(start).toISOString() && x.site === site)
  assert.ok(d !== undefined, `no ${granularity} document for ${start}`)
  return d
}

describe('statistics aggregator', () => {
  describe('rules', () => {
    it('classifies status codes into 2xx–5xx and other', () => {
      assert.deepEqual([200, 304, 404, 503, 101, undefined, 999].map(statusClass), ['2xx', '3xx', '4xx', '5xx', 'other', 'other', 'other'])
    })

    it('treats a path as an asset by the extension of its last segment, case-insensitively', () => {
      assert.equal(isStaticPath('/css/site.CSS', STATIC), true)
      assert.equal(isStaticPath('/robots.txt', STATIC), true)
      assert.equal(isStaticPath('/blog/2024/hello', STATIC), false)
      assert.equal(isStaticPath('/v1.2/css', STATIC), false)
      assert.equal(isStaticPath('/file.', STATIC), false)
      assert.equal(isStaticPath('/app.jsx', STATIC), false)
    })

    it('counts a pageview only for GET/HEAD, 2xx or 304, non-asset paths and humans', () => {
      const yes = (r: Omit<R, 't'>): boolean => isPageview(rec({ t: '2026-03-01T10:00:00Z', ...r }), STATIC)
      assert.equal(yes({}), true)
      assert.equal(yes({ method: 'HEAD' }), true)
      assert.equal(yes({ status: 304 }), true)
      assert.equal(yes({ status: 204 }), true)
      assert.equal(yes({ method: 'POST' }), false)
      assert.equal(yes({ method: 'get' }), false)
      assert.equal(yes({ status: 301 }), false)
      assert.equal(yes({ status: 404 }), false)
      assert.equal(yes({ status: 500 }), false)
      assert.equal(yes({ path: '/style.css', query: 'v=3' }), false)
      assert.equal(yes({ path: '/logo.PNG' }), false)
      assert.equal(yes({ ua: GOOGLEBOT }), false)
    })

    it('keeps only external referrer hosts, ignoring a leading www. on either side', () => {
      assert.equal(externalReferrerHost('https://www.google.com/search?q=x', 'www.example.test'), 'www.google.com')
      assert.equal(externalReferrerHost('https://example.test/a', 'www.example.test'), undefined)
      assert.equal(externalReferrerHost('http://WWW.Example.Test./b', 'www.example.test'), undefined)
      assert.equal(externalReferrerHost('https://user@blog.example.test:8443/x', 'www.example.test'), 'blog.example.test')
      assert.equal(externalReferrerHost('http://[2001:db8::7]/p', 'www.example.test'), '[2001:db8::7]')
      assert.equal(externalReferrerHost('android-app://com.google.android.gm/', 'www.example.test'), 'com.google.android.gm')
      assert.equal(externalReferrerHost('not a url', 'www.example.test'), undefined)
      assert.equal(externalReferrerHost(undefined, 'www.example.test'), undefined)
    })
  })

  describe('counting', () => {
    const records = [
      rec({ t: '2026-03-01T10:00:00Z', visitor: 'a', path: '/', ref: 'https://www.google.com/', bytes: 1000 }),
      rec({ t: '2026-03-01T10:00:01Z', visitor: 'a', path: '/style.css', ref: 'https://www.example.test/', bytes: 300 }),
      rec({ t: '2026-03-01T10:05:00Z', visitor: 'a', path: '/about', ref: 'https://www.example.test/' }),
      rec({ t: '2026-03-01T10:06:00Z', visitor: 'b', path: '/about', ua: SAFARI_IOS, ref: 'https://t.co/xyz' }),
      rec({ t: '2026-03-01T10:07:00Z', visitor: 'b', path: '/missing', status: 404, ua: SAFARI_IOS }),
      rec({ t: '2026-03-01T10:08:00Z', visitor: 'g', path: '/', ua: GOOGLEBOT }),
      rec({ t: '2026-03-01T10:09:00Z', visitor: 'g', path: '/robots.txt', ua: GOOGLEBOT }),
      rec({ t: '2026-03-01T11:10:00Z', visitor: 'a', path: '/contact', method: 'POST', status: 303 }),
      rec({ t: '2026-03-01T11:11:00Z', visitor: 'a', path: '/thanks' }),
      rec({ t: '2026-03-01T11:12:00Z', visitor: 'c', path: '/', status: 500 })
    ]
    const docs = aggregateAll(records, OPTS)

    it('emits one document per site × hour and site × day that validates against the schema', () => {
      assert.deepEqual(docs.map(d => `${d.granularity} ${d.period.start}`), [
        'day 2026-03-01T00:00:00.000Z', 'hour 2026-03-01T10:00:00.000Z', 'hour 2026-03-01T11:00:00.000Z'
      ])
      for (const d of docs) {
        assertStatsDocument(d)
        assert.equal(d.id, statsDocumentId(d.site, d.granularity, d.period.start))
      }
    })

    it('counts hits, bytes, status classes, humans and bots', () => {
      const h10 = find(docs, 'hour', '2026-03-01T10:00:00Z')
      assert.equal(h10.hits, 7)
      assert.equal(h10.bytes, 1000 + 300 + 5 * 100)
      assert.deepEqual(h10.status, { '2xx': 6, '3xx': 0, '4xx': 1, '5xx': 0, other: 0 })
      assert.deepEqual(h10.humans, { hits: 5, visitors: 2 })
      assert.deepEqual(h10.bots, { hits: 2, visitors: 1 })
      assert.equal(h10.visitors, 3)
      const day = find(docs, 'day', '2026-03-01T00:00:00Z')
      assert.equal(day.hits, 10)
      assert.deepEqual(day.status, { '2xx': 7, '3xx': 1, '4xx': 1, '5xx': 1, other: 0 })
      assert.equal(day.visitors, 4)
      assert.deepEqual(day.humans, { hits: 8, visitors: 3 })
    })

    it('counts pageviews by path and external referrer domains of pageviews only', () => {
      const day = find(docs, 'day', '2026-03-01T00:00:00Z')
      assert.equal(day.pageviews, 4) // /, /about ×2, /thanks — not the css, 404, bot, POST, 500
      assert.deepEqual(day.top.pages, [{ key: '/about', count: 2 }, { key: '/', count: 1 }, { key: '/thanks', count: 1 }])
      assert.deepEqual(day.top.referrer_domains, [{ key: 't.co', count: 1 }, { key: 'www.google.com', count: 1 }])
    })

    it('counts browsers, OS and devices once per human visitor', () => {
      const day = find(docs, 'day', '2026-03-01T00:00:00Z')
      assert.deepEqual(day.top.browsers, [{ key: 'Firefox', count: 2 }, { key: 'Safari', count: 1 }])
      assert.deepEqual(day.top.os, [{ key: 'Linux', count: 2 }, { key: 'iOS', count: 1 }])
      assert.deepEqual(day.top.devices, [{ key: 'desktop', count: 2 }, { key: 'mobile', count: 1 }])
    })

    it('counts visits where they start and their entry pages', () => {
      // a: 10:00–10:05 (entry /), then /thanks at 11:11 (66 min later: a new visit); b: /about at 10:06.
      assert.equal(find(docs, 'hour', '2026-03-01T10:00:00Z').visits, 2)
      assert.equal(find(docs, 'hour', '2026-03-01T11:00:00Z').visits, 1)
      const day = find(docs, 'day', '2026-03-01T00:00:00Z')
      assert.equal(day.visits, 3)
      assert.deepEqual(day.top.entry_pages, [{ key: '/', count: 1 }, { key: '/about', count: 1 }, { key: '/thanks', count: 1 }])
    })
  })

  describe('visits', () => {
    const visits = (times: string[], gap = OPTS.sessionGapMs): number =>
      find(aggregateAll(times.map((t, i) => rec({ t, path: `/p${i}` })), { ...OPTS, sessionGapMs: gap }), 'day', '2026-03-01T00:00:00Z').visits

    it('keeps pageviews less than 30 minutes apart in one visit', () => {
      assert.equal(visits(['2026-03-01T10:00:00Z', '2026-03-01T10:29:59Z', '2026-03-01T10:59:58Z']), 1)
    })

    it('starts a new visit after a gap of exactly 30 minutes', () => {
      assert.equal(visits(['2026-03-01T10:00:00Z', '2026-03-01T10:30:00Z']), 2)
    })

    it('ends every visit at UTC midnight (the visitor id is per UTC day)', () => {
      const docs = aggregateAll([rec({ t: '2026-03-01T23:55:00Z' }), rec({ t: '2026-03-02T00:05:00Z', visitor: 'a-next-day' })], OPTS)
      assert.equal(find(docs, 'day', '2026-03-01T00:00:00Z').visits, 1)
      assert.equal(find(docs, 'day', '2026-03-02T00:00:00Z').visits, 1)
    })

    it('merges two visits when a late pageview fills the gap, and moves the entry page to an earlier pageview', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:05:00Z', path: '/a' }))
      agg.add(rec({ t: '2026-03-01T10:40:00Z', path: '/b' }))
      agg.add(rec({ t: '2026-03-01T11:30:00Z', visitor: 'z' })) // moves the watermark past 11:00
      const first = agg.due()
      first.forEach(e => e.ack())
      const h10 = first.find(e => e.doc.granularity === 'hour')?.doc
      assert.equal(h10?.visits, 2)
      agg.add(rec({ t: '2026-03-01T10:20:00Z', path: '/c' })) // late: 10:05–10:20–10:40 is one visit now
      agg.add(rec({ t: '2026-03-01T10:01:00Z', path: '/first' })) // late: an earlier entry
      const again = agg.due()
      assert.equal(again.length, 1)
      const h10b = again[0]?.doc
      assert.equal(h10b?.id, h10?.id, 'a re-emit keeps the id, so it overwrites')
      assert.equal(h10b?.visits, 1)
      assert.deepEqual(h10b?.top.entry_pages, [{ key: '/first', count: 1 }])
    })

    it('gives the same documents (visits and entry pages included) whatever order the records arrive in', () => {
      const base = Date.parse('2026-03-01T08:00:00Z')
      const arb = fc.array(fc.record({ min: fc.integer({ min: 0, max: 600 }), v: fc.constantFrom('a', 'b', 'c'), p: fc.constantFrom('/', '/x', '/y', '/z.css') }), { minLength: 1, maxLength: 60 })
      fc.assert(fc.property(arb, fc.integer(), (rows, seed) => {
        const rs = rows.map(r => rec({ t: new Date(base + r.min * MIN).toISOString(), visitor: r.v, path: r.p }))
        const shuffled = [...rs].sort((a, b) => (hash(a.event.id, seed) - hash(b.event.id, seed)))
        const opts = { ...OPTS, graceMs: 10 * 24 * 60 * MIN }
        const key = (d: StatsDocument): unknown => ({ ...d, partial: null })
        assert.deepEqual(aggregateAll(shuffled, opts).map(key), aggregateAll(rs, opts).map(key))
      }), { numRuns: 200 })
    })
  })

  describe('watermark, late records and emission', () => {
    it('emits a bucket once the watermark (newest time − lateness) passes its end, not before', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }))
      agg.add(rec({ t: '2026-03-01T11:04:59Z' }))
      assert.deepEqual(agg.due(), [])
      agg.add(rec({ t: '2026-03-01T11:05:00Z' }))
      const due = agg.due()
      assert.deepEqual(due.map(e => `${e.doc.granularity} ${e.doc.period.start} ${e.doc.hits} ${e.doc.partial}`), ['hour 2026-03-01T10:00:00.000Z 1 false'])
    })

    it('re-emits an emitted bucket when a late record within grace changes it, and not otherwise', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }))
      agg.add(rec({ t: '2026-03-01T11:10:00Z' }))
      agg.due().forEach(e => e.ack())
      assert.deepEqual(agg.due(), [], 'nothing changed')
      assert.equal(agg.add(rec({ t: '2026-03-01T10:59:00Z' })), 'counted')
      const again = agg.due()
      assert.equal(again.length, 1)
      assert.equal(again[0]?.doc.hits, 2)
    })

    it('leaves out records later than grace, and counts a record too late for its hour in its day', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }))
      agg.add(rec({ t: '2026-03-01T12:05:00Z' })) // watermark 12:00 = 10:00–11:00 bucket end + 60 min grace
      assert.equal(agg.add(rec({ t: '2026-03-01T10:30:00Z' })), 'day_only')
      assert.equal(agg.add(rec({ t: '2026-03-01T11:30:00Z' })), 'counted')
      agg.add(rec({ t: '2026-03-02T01:05:00Z', visitor: 'n' })) // watermark 01:00 next day = day end + grace
      assert.equal(agg.add(rec({ t: '2026-03-01T23:59:00Z' })), 'too_late')
      const docs = agg.due().map(e => e.doc)
      assert.equal(find(docs, 'day', '2026-03-01T00:00:00Z').hits, 4)
      assert.equal(find(docs, 'hour', '2026-03-01T10:00:00Z').hits, 1)
    })

    it('drops a bucket only after its last version was acknowledged and grace has passed', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }))
      agg.add(rec({ t: '2026-03-01T12:10:00Z' }))
      assert.equal(agg.openBuckets, 3)
      assert.equal(agg.expire(), 0, 'not acknowledged yet')
      agg.due().forEach(e => e.ack())
      assert.equal(agg.expire(), 1, 'hour 10 is final')
      assert.equal(agg.add(rec({ t: '2026-03-01T10:20:00Z' })), 'day_only')
    })

    it('commits only up to the lowest offset a bucket in memory still needs', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }), { partition: 2, offset: 40n })
      agg.add(rec({ t: '2026-03-02T10:10:00Z', site: 'b.example.test' }), { partition: 2, offset: 41n })
      agg.add(rec({ t: '2026-03-01T10:11:00Z' }), { partition: 1, offset: 7n })
      assert.equal(agg.commitPoint(2, 42n), 40n)
      assert.equal(agg.commitPoint(1, 8n), 7n)
      assert.equal(agg.commitPoint(0, 5n), 5n)
      agg.raiseWatermark(2, Date.parse('2026-03-02T01:00:00Z'))
      agg.raiseWatermark(1, Date.parse('2026-03-02T01:00:00Z'))
      agg.due().forEach(e => e.ack())
      agg.expire()
      assert.equal(agg.commitPoint(2, 42n), 41n, 'day 1 of the first site is final; day 2 of b is still open')
      assert.equal(agg.commitPoint(1, 8n), 8n)
    })

    it('holds back buckets of a partition being replayed, and emits everything (marked partial) on demand', () => {
      const agg = new StatsAggregator(OPTS)
      agg.add(rec({ t: '2026-03-01T10:10:00Z' }), { partition: 0 })
      agg.add(rec({ t: '2026-03-01T10:10:00Z', site: 'b.example.test' }), { partition: 1 })
      agg.raiseWatermark(0, Date.parse('2026-03-02T00:00:00Z'))
      agg.raiseWatermark(1, Date.parse('2026-03-02T00:00:00Z'))
      assert.deepEqual(agg.due({ hold: p => p === 1 }).map(e => e.doc.site), ['www.example.test', 'www.example.test'])
      const all = new StatsAggregator(OPTS)
      all.add(rec({ t: '2026-03-01T10:10:00Z' }))
      assert.deepEqual(all.due({ all: true }).map(e => e.doc.partial), [true, true])
    })

    it('closes the oldest day early when more buckets are open than allowed', () => {
      const agg = new StatsAggregator({ ...OPTS, maxOpenBuckets: 10 })
      agg.add(rec({ t: '2026-03-01T10:10:00Z', site: 'old.example.test' }), { partition: 0 })
      for (const s of ['b', 'c', 'd', 'e', 'f']) agg.add(rec({ t: '2026-03-02T10:10:00Z', site: `${s}.example.test` }), { partition: 1 })
      assert.equal(agg.openBuckets, 12)
      assert.equal(agg.enforceLimit(), 1)
      assert.equal(agg.enforceLimit(), 0)
      const due = agg.due()
      assert.deepEqual(due.map(e => e.doc.site), ['old.example.test', 'old.example.test'], 'emitted before it is dropped')
      due.forEach(e => e.ack())
      agg.expire()
      assert.equal(agg.openBuckets, 10)
      assert.equal(agg.add(rec({ t: '2026-03-01T23:00:00Z', site: 'old.example.test' }), { partition: 0 }), 'too_late')
    })
  })

  describe('top lists', () => {
    it('sorts by count, then key, and cuts at topN', () => {
      const rs = ['/b', '/a', '/c', '/a', '/b', '/d', '/e'].map((p, i) => rec({ t: `2026-03-01T10:0${i}:00Z`, path: p }))
      const day = find(aggregateAll(rs, { ...OPTS, topN: 3 }), 'day', '2026-03-01T00:00:00Z')
      assert.deepEqual(day.top.pages, [{ key: '/a', count: 2 }, { key: '/b', count: 2 }, { key: '/c', count: 1 }])
    })

    it(`counts keys beyond maxKeysPerList under ${OTHER_KEY}`, () => {
      const rs = Array.from({ length: 150 }, (_, i) => rec({ t: '2026-03-01T10:00:00Z', path: `/p${i}` }))
      const day = find(aggregateAll(rs, { ...OPTS, maxKeysPerList: 100, topN: 1 }), 'day', '2026-03-01T00:00:00Z')
      assert.deepEqual(day.top.pages, [{ key: OTHER_KEY, count: 50 }])
    })
  })
})

function hash (s: string, seed: number): number {
  let h = seed | 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 2654435761)
  return h
}
