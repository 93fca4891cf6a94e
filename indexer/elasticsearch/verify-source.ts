/**
 * `auditline verify` reading Elasticsearch: point-in-time scans of the seals index and of each event index,
 * `mget` for single documents, and the dead-letter topic from Kafka (the only Kafka read of verify).
 */
import { randomBytes } from 'node:crypto'
import type { Client } from '@elastic/elasticsearch'
import { eventIndexPattern, retryTransient } from '../../lib/elasticsearch.ts'
import { statsIndexPattern } from '../../lib/stats-template.ts'
import { checkpointDocId } from '../../lib/seal-template.ts'
import { createKafka, type KafkaConfig } from '../../lib/kafka.ts'
import { topicName } from '../../lib/topics.ts'
import type { Logger } from '../../lib/log.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import type { IndexedDoc, StoredCheckpoint, TimeRange } from '../verify.ts'
import type { VerifySource } from '../store.ts'
import { getCheckpoint, readHead } from './seal.ts'

const PAGE = 1000

async function * scan<T> (es: Client, index: string, query: Record<string, unknown>): AsyncGenerator<Array<{ _index: string, _id: string, _source?: T }>> {
  // A shard that cannot answer must fail the scan, never shorten it: verify would report its events as removed.
  const pit = await retryTransient(async () => await es.openPointInTime({ index, keep_alive: '2m', ignore_unavailable: true }))
  try {
    let after: unknown[] | undefined
    for (;;) {
      const res = await retryTransient(async () => await es.search<T>({
        pit: { id: pit.id, keep_alive: '2m' },
        size: PAGE,
        query,
        allow_partial_search_results: false,
        sort: [{ _shard_doc: 'asc' }],
        ...(after === undefined ? {} : { search_after: after as Array<string | number> })
      }))
      const hits = res.hits.hits
      if (hits.length === 0) return
      yield hits.map(h => ({ _index: h._index, _id: h._id as string, ...(h._source === undefined ? {} : { _source: h._source }) }))
      after = hits[hits.length - 1]?.sort
      if (hits.length < PAGE) return
    }
  } finally {
    await es.closePointInTime({ id: pit.id }).catch(() => {})
  }
}

async function mget (es: Client, index: string, ids: readonly string[]): Promise<Map<string, unknown>> {
  const found = new Map<string, unknown>()
  for (let i = 0; i < ids.length; i += PAGE) {
    const res = await es.mget<unknown>({ index, ids: ids.slice(i, i + PAGE) })
    for (const d of res.docs) if ('found' in d && d.found) found.set(d._id, d._source)
  }
  return found
}

/** Every (stream → sequence numbers) in the dead-letter topic, read from the beginning up to its current end. */
export async function readDeadLetters (kafkaCfg: KafkaConfig, log: Logger): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>()
  const kafka = createKafka(kafkaCfg, log)
  const topic = topicName(kafkaCfg.topicPrefix, 'deadletter')
  const admin = kafka.admin()
  await admin.connect()
  const groupId = `auditline-verify-${randomBytes(6).toString('hex')}`
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    const ends = new Map(offsets.map(p => [p.partition, BigInt(p.high)]))
    const starts = new Map(offsets.map(p => [p.partition, BigInt(p.low)]))
    const left = new Set([...ends].filter(([p, high]) => high > (starts.get(p) ?? 0n)).map(([p]) => p))
    if (left.size === 0) return out
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false })
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await new Promise<void>((resolve, reject) => {
        consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            try {
              const d = JSON.parse(message.value?.toString('utf8') ?? 'null') as DeadLetter | null
              const stream = d?.source?.stream
              if (typeof stream === 'string' && typeof d?.sequence === 'number') {
                const s = out.get(stream) ?? new Set<number>()
                s.add(d.sequence)
                out.set(stream, s)
              }
            } catch { /* not a dead letter of ours: it explains nothing */ }
            if (BigInt(message.offset) + 1n >= (ends.get(partition) ?? 0n)) left.delete(partition)
            if (left.size === 0) resolve()
          }
        }).catch(reject)
      })
    } finally {
      await consumer.disconnect()
    }
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {})
    await admin.disconnect()
  }
  return out
}

export class ElasticsearchVerifySource implements VerifySource {
  readonly sealsName: string
  readonly #events: string

  constructor (private readonly es: Client, prefix: string, sealsIndex: string, private readonly deadLetterReader: () => Promise<Map<string, Set<number>>>) {
    this.sealsName = sealsIndex
    this.#events = `${eventIndexPattern(prefix)},-${statsIndexPattern(prefix)}`
  }

  async readHead (): Promise<StoredCheckpoint | null> {
    return await readHead(this.es, this.sealsName)
  }

  async getCheckpoint (seq: number): Promise<StoredCheckpoint | null> {
    return await getCheckpoint(this.es, this.sealsName, seq)
  }

  async getCheckpoints (seqs: readonly number[]): Promise<Map<number, StoredCheckpoint>> {
    const found = await mget(this.es, this.sealsName, seqs.map(checkpointDocId))
    const out = new Map<number, StoredCheckpoint>()
    for (const seq of seqs) {
      const docId = checkpointDocId(seq)
      if (found.has(docId)) out.set(seq, { docId, cp: found.get(docId) })
    }
    return out
  }

  async * checkpoints (range: TimeRange): AsyncIterable<StoredCheckpoint[]> {
    const filter: Array<Record<string, unknown>> = []
    if (range.from !== undefined) filter.push({ range: { to: { gte: range.from } } })
    if (range.to !== undefined) filter.push({ range: { from: { lte: range.to } } })
    for await (const page of scan<unknown>(this.es, this.sealsName, { bool: { filter } })) {
      yield page.map(h => ({ docId: h._id, cp: h._source }))
    }
  }

  async indices (matches: (index: string) => boolean): Promise<string[]> {
    const res = await this.es.indices.get({ index: this.#events, ignore_unavailable: true, allow_no_indices: true, expand_wildcards: 'open' })
    return Object.keys(res).filter(i => i !== this.sealsName && matches(i)).sort()
  }

  async * docs (index: string, range: TimeRange): AsyncIterable<IndexedDoc[]> {
    const ts: Record<string, string> = {}
    if (range.from !== undefined) ts.gte = range.from
    if (range.to !== undefined) ts.lte = range.to
    const query = Object.keys(ts).length === 0 ? { match_all: {} } : { range: { '@timestamp': ts } }
    for await (const page of scan<unknown>(this.es, index, query)) yield page.map(h => ({ index: h._index, id: h._id, source: h._source }))
  }

  async getDocs (index: string, ids: readonly string[]): Promise<Map<string, unknown>> {
    return await mget(this.es, index, ids)
  }

  async retirementRecords (indices: readonly string[]): Promise<unknown[]> {
    if (indices.length === 0) return []
    // Two records per deleted index: a handful, never a page-able amount.
    const res = await retryTransient(async () => await this.es.search<unknown>({
      index: this.#events,
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      size: 10_000,
      query: { bool: { filter: [{ term: { 'event.action': 'retention_index_deleted' } }, { terms: { 'retention.index': [...indices] } }] } }
    }))
    return res.hits.hits.flatMap(h => h._source === undefined ? [] : [h._source])
  }

  async sequencesIn (stream: string, from: number, to: number): Promise<Set<number>> {
    const res = await retryTransient(async () => await this.es.search<{ event?: { sequence?: number } }>({
      index: this.#events,
      ignore_unavailable: true,
      allow_no_indices: true,
      allow_partial_search_results: false,
      size: Math.min(to - from + 1, 10_000),
      _source: ['event.sequence'],
      query: { bool: { filter: [{ term: { 'auditline.stream': stream } }, { range: { 'event.sequence': { gte: from, lte: to } } }] } }
    }))
    return new Set(res.hits.hits.map(h => h._source?.event?.sequence).filter((n): n is number => typeof n === 'number'))
  }

  async deadLetters (): Promise<Map<string, Set<number>>> {
    return await this.deadLetterReader()
  }

  async close (): Promise<void> {
    await this.es.close()
  }
}
