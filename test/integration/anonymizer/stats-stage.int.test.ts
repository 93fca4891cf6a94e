/**
 * The statistics stage on a real Kafka broker, then the indexer into a real Elasticsearch node: anonymized
 * records (from a generated log through the real parser and anonymizer, some of them arriving late) go into
 * `web.access.anon.v1`; the stage is stopped half-way and restarted; the last version of every document in
 * `stats.web.v1` — and in the index — must equal what the pure aggregator computes from the same records in
 * the same order (watermark, late and too-late records included).
 */
import assert from 'node:assert/strict'
import { Registry } from 'prom-client'
import type { Admin, Kafka, Producer } from 'kafkajs'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, startIndex } from '../../../cli/pipeline.ts'
import { createKafka, createConsumer, createProducer } from '../../../lib/kafka.ts'
import { topicName } from '../../../lib/topics.ts'
import type { Ctx, Running } from '../../../lib/component.ts'
import type { AnonymizedAccess } from '../../../anonymizer/record.ts'
import { aggregateAll } from '../../../anonymizer/stats/aggregate.ts'
import { start, validate } from '../../../anonymizer/stats/run.ts'
import type { StatsConfig } from '../../../anonymizer/stats/config.ts'
import type { StatsDocument } from '../../../anonymizer/stats/record.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values, type Consumed } from '../../helpers/kafka.ts'
import { anonymizeLines, generateCombinedLog } from '../../helpers/access-log.ts'

const SITE = 'www.shop-example.test'
const DAYS = ['2026-03-01', '2026-03-02']
const RECORDS = anonymizeLines(generateCombinedLog(7, { days: DAYS, humans: 40, site: SITE }).lines, SITE)

/** Moves some records later in the stream: hour 09 of day 1 after 12:30 (late, within 3 h grace), hour 20 of day 1 after 04:00 of day 2 (too late). */
function withLateArrivals (records: AnonymizedAccess[]): AnonymizedAccess[] {
  const late = records.filter(r => r['@timestamp'].startsWith('2026-03-01T09:')).slice(0, 6)
  const tooLate = records.filter(r => r['@timestamp'].startsWith('2026-03-01T20:')).slice(0, 4)
  const out = records.filter(r => !late.includes(r) && !tooLate.includes(r))
  const at = (iso: string): number => out.findIndex(r => r['@timestamp'] >= iso)
  out.splice(at('2026-03-02T04:00:00'), 0, ...tooLate)
  out.splice(at('2026-03-01T12:30:00'), 0, ...late)
  return out
}

/** The last version of every document id (one site: one partition, so in emission order). */
const lastVersions = (msgs: Consumed[]): Map<string, StatsDocument> => new Map(values<StatsDocument>(msgs).map(d => [d.id, d]))

interface Harness {
  cfg: Readonly<AppConfig>
  ctx: Ctx
  kafka: Kafka
  anonTopic: string
  statsTopic: string
  produce: (rs: ReadonlyArray<AnonymizedAccess | string>) => Promise<void>
  startStage: (statsCfg: StatsConfig, withAdmin?: boolean) => Promise<Running & { metrics: Registry }>
  /** The offset the stage's commit metadata says it reached (sum over partitions). */
  reached: (groupId: string) => Promise<{ offset: number, watermark: number }>
  /** Messages in the statistics topic so far (sum of the partitions' end offsets). */
  statsCount: () => Promise<number>
  close: () => Promise<void>
}

async function harness (running: Running[]): Promise<Harness> {
  const { topicPrefix, indexPrefix } = uniquePrefix()
  const cfg = loadAppConfig(undefined, {}, {
    log: { level: 'warn' },
    kafka: { brokers: stack().brokers, topicPrefix },
    elasticsearch: { url: stack().esUrl, indexPrefix },
    indexer: { groupId: `${topicPrefix}indexer`, topics: ['stats'] }
  })
  const log = createLogger({ level: 'warn' })
  const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
  await init(cfg, ctx)
  const kafka = createKafka(cfg.kafka, log)
  const producer: Producer = createProducer(kafka)
  const admin: Admin = kafka.admin()
  await producer.connect()
  await admin.connect()
  const anonTopic = topicName(topicPrefix, 'webAnon')
  return {
    cfg,
    ctx,
    kafka,
    anonTopic,
    statsTopic: topicName(topicPrefix, 'stats'),
    async produce (rs) {
      // Small sends make small record batches: a fetch returns whole batches, so this is what bounds a stage batch.
      for (let i = 0; i < rs.length; i += 50) {
        const messages = rs.slice(i, i + 50).map(r => typeof r === 'string' ? { key: SITE, value: r } : { key: r.web.site, value: JSON.stringify(r) })
        await producer.send({ topic: anonTopic, acks: -1, messages })
      }
    },
    async startStage (statsCfg, withAdmin = true) {
      const metrics = new Registry()
      const r = await start(statsCfg, { ...ctx, metrics }, {
        consumer: createConsumer(kafka, statsCfg.groupId, { maxBytes: 65_536 }),
        producer: createProducer(kafka),
        topicPrefix,
        ...(withAdmin ? { admin: kafka.admin() } : {})
      })
      running.push(r)
      return { metrics, close: async () => { running.splice(running.indexOf(r), 1); await r.close() } }
    },
    async reached (groupId) {
      const o = await admin.fetchOffsets({ groupId, topics: [anonTopic] })
      let offset = 0
      let watermark = -Infinity
      for (const p of o[0]?.partitions ?? []) {
        if (p.metadata === null || p.metadata === '') continue
        const m = JSON.parse(p.metadata) as { l: string, w: number | null }
        offset += Number(m.l)
        if (m.w !== null) watermark = Math.max(watermark, m.w)
      }
      return { offset, watermark }
    },
    async statsCount () {
      return (await admin.fetchTopicOffsets(topicName(topicPrefix, 'stats'))).reduce((n, p) => n + Number(p.high), 0)
    },
    async close () {
      await admin.disconnect()
      await producer.disconnect()
    }
  }
}

describe('statistics stage against a real Kafka broker, indexed into Elasticsearch', function () {
  this.timeout(120_000)
  const running: Running[] = []
  after(async () => { for (const r of [...running].reverse()) await r.close().catch(() => {}) })

  it('emits documents equal to the pure aggregator across a restart, and the index holds the last version of each', async () => {
    const h = await harness(running)
    const { indexPrefix } = h.cfg.elasticsearch
    const es = stack().esUrl
    // Elasticsearch accepted both templates, although `<prefix>-*` also matches `<prefix>-stats-*` (different priorities).
    const tpl = await (await fetch(`${es}/_index_template/${indexPrefix}-*`)).json() as { index_templates: Array<{ name: string, index_template: { priority: number } }> }
    assert.deepEqual(tpl.index_templates.map(t => [t.name, t.index_template.priority]).sort(), [[`${indexPrefix}-events`, 100], [`${indexPrefix}-stats`, 200]])

    const records = withLateArrivals(RECORDS)
    const statsCfg = validate({ groupId: `${h.cfg.kafka.topicPrefix}stats`, idleMs: 600_000, graceMs: 3 * 3_600_000 })
    const expected = aggregateAll(records, statsCfg)
    const doc = (g: string, start: string): StatsDocument | undefined => expected.find(d => d.granularity === g && d.period.start === start)
    const count = (prefix: string): number => records.filter(r => r['@timestamp'].startsWith(prefix)).length
    assert.equal(doc('day', '2026-03-01T00:00:00.000Z')?.hits, count('2026-03-01') - 4, 'the four too-late records are left out')
    assert.equal(doc('hour', '2026-03-01T09:00:00.000Z')?.hits, count('2026-03-01T09:'), 'the late records of hour 09 are counted')
    assert.ok(expected.some(d => d.granularity === 'hour' && !d.partial) && expected.some(d => d.partial))

    try {
      // Phase 1: 60 % of the records, then a stop (partial documents of the open buckets are emitted).
      const half = Math.floor(records.length * 0.6)
      await h.produce(records.slice(0, half))
      const first = await h.startStage(statsCfg)
      await waitFor('phase 1 to be committed', async () => (await h.reached(statsCfg.groupId)).offset === half ? true : undefined, 60_000, 200)
      await first.close()

      // Phase 2: a restart re-reads from the committed offset, then the rest arrives, with one unreadable message,
      // after the last 30 records of phase 1 once more — what a successor anonymizer produces when it re-reads a raw
      // batch its predecessor had produced but not committed: they must not be counted twice.
      const again = records.slice(half - 30, half)
      await h.produce([...again, ...records.slice(half), 'not json'])
      const second = await h.startStage(statsCfg)
      await waitFor('phase 2 to be committed', async () => (await h.reached(statsCfg.groupId)).offset === records.length + again.length + 1 ? true : undefined, 60_000, 200)
      const dups = (await second.metrics.getSingleMetric('auditline_stats_records_total')?.get())?.values.find(v => v.labels.result === 'duplicate')?.value
      assert.equal(dups, again.length, 'the re-delivered records were recognised by their ids')
      await second.close()
    } finally {
      await h.close()
    }

    const want = new Map(expected.map(d => [d.id, d]))
    const emitted = await consumeUntil([h.statsTopic], all => { const m = lastVersions(all); return [...want].every(([id, d]) => JSON.stringify(m.get(id)) === JSON.stringify(d)) }, 30_000)
    const got = lastVersions(emitted)
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort())
    for (const [id, d] of want) assert.deepEqual(got.get(id), d, `${d.granularity} ${d.period.start}`)
    const h09 = values<StatsDocument>(emitted).filter(d => d.id === doc('hour', '2026-03-01T09:00:00.000Z')?.id).map(d => d.hits)
    assert.ok(h09.length >= 2 && (h09[0] as number) < (h09[h09.length - 1] as number), `hour 09 emitted, then re-emitted with its late records: ${h09.join(' → ')}`)
    const dead = values<{ code: string, stage: string }>(await consumeUntil([topicName(h.cfg.kafka.topicPrefix, 'deadletter')], all => all.length >= 1, 15_000))
    assert.deepEqual(dead.map(d => [d.stage, d.code]), [['stats', 'AUD_ERR_STATS_DECODE']])

    // Phase 3: the indexer puts each document under its id into <prefix>-stats-YYYY.MM.DD: re-emits overwrote.
    running.push(await startIndex(h.cfg, h.ctx))
    const hits = await waitFor('the statistics documents in Elasticsearch', async () => {
      await fetch(`${es}/${indexPrefix}-stats-*/_refresh`, { method: 'POST' })
      const res = await (await fetch(`${es}/${indexPrefix}-stats-*/_search?size=1000`)).json() as { hits?: { hits: Array<{ _id: string, _index: string, _source: StatsDocument }> } }
      const found = res.hits?.hits ?? []
      return found.length >= want.size && found.every(x => JSON.stringify(x._source) === JSON.stringify(want.get(x._id))) ? found : undefined
    }, 60_000, 500)
    assert.equal(hits.length, want.size)
    for (const x of hits) assert.equal(x._index, `${indexPrefix}-stats-${x._source.period.start.slice(0, 10).replaceAll('-', '.')}`)
    const mapping = await (await fetch(`${es}/${indexPrefix}-stats-2026.03.01/_mapping`)).json() as Record<string, { mappings: { properties: Record<string, { type?: string }> } }>
    const props = mapping[`${indexPrefix}-stats-2026.03.01`]?.mappings.properties ?? {}
    assert.equal(props.hits?.type, 'long', 'the stats template, not the event template, mapped the index')
    assert.equal(props.event, undefined)
    const sum = await (await fetch(`${es}/${indexPrefix}-stats-*/_search?size=0`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: { term: { granularity: 'day' } }, aggs: { hits: { sum: { field: 'hits' } } } }) })).json() as { aggregations: { hits: { value: number } } }
    assert.equal(sum.aggregations.hits.value, expected.filter(d => d.granularity === 'day').reduce((n, d) => n + d.hits, 0))
  })

  it('after an idle partition closed its buckets and a restart, later records of those buckets are too late and overwrite nothing', async () => {
    const h = await harness(running)
    const groupId = `${h.cfg.kafka.topicPrefix}stats`
    const before = RECORDS.slice(0, 300)
    const after = RECORDS.slice(300, 400)
    const expected = aggregateAll(before, validate({})).map(d => ({ ...d, partial: false }))
    let emitted: number
    try {
      // Idle after 1 s: the watermark follows the wall clock (today), which closes every bucket of March 2026.
      await h.produce(before)
      const first = await h.startStage(validate({ groupId, idleMs: 1000 }))
      await waitFor('the idle watermark to be committed', async () => {
        const r = await h.reached(groupId)
        return r.offset === before.length && r.watermark > Date.parse('2026-04-01') ? true : undefined
      }, 60_000, 200)
      await first.close()
      emitted = await h.statsCount()

      // The restart restores that watermark from the commit metadata: the later records of March are too late.
      await h.produce(after)
      const second = await h.startStage(validate({ groupId, idleMs: 600_000 }))
      await waitFor('phase 2 to be committed', async () => (await h.reached(groupId)).offset === before.length + after.length ? true : undefined, 60_000, 200)
      const tooLate = (await second.metrics.getSingleMetricAsString('auditline_stats_records_total')).match(/result="too_late"} (\d+)/)?.[1]
      await second.close()
      assert.equal(Number(tooLate), after.length)
      assert.equal(await h.statsCount(), emitted, 'nothing was emitted after the restart')
    } finally {
      await h.close()
    }
    const want = JSON.stringify([...expected].sort((a, b) => a.id < b.id ? -1 : 1))
    const sorted = (all: Consumed[]): StatsDocument[] => [...lastVersions(all).values()].sort((a, b) => a.id < b.id ? -1 : 1)
    const got = lastVersions(await consumeUntil([h.statsTopic], all => JSON.stringify(sorted(all)) === want, 15_000))
    assert.deepEqual([...got.values()].sort((a, b) => a.id < b.id ? -1 : 1), [...expected].sort((a, b) => a.id < b.id ? -1 : 1))
  })
})
