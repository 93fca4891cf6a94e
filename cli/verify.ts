/**
 * `auditline verify`: reads the seal checkpoints and the indexed events from Elasticsearch (and, on request,
 * the dead-letter topic from Kafka) and feeds indexer/verify.ts, index by index, so that memory is bounded by
 * the largest daily index. Findings are handed to `emit` as they are found; the summary is returned.
 */
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import type { Client } from '@elastic/elasticsearch'
import { createEsClient, eventIndexPattern } from '../lib/elasticsearch.ts'
import { statsIndexPattern } from '../lib/stats-template.ts'
import { checkpointDocId, sealsIndexName } from '../lib/seal-template.ts'
import { createKafka } from '../lib/kafka.ts'
import { topicName } from '../lib/topics.ts'
import { verifyEventHash, type AuditEvent } from '../lib/ecs.ts'
import type { Logger } from '../lib/log.ts'
import type { DeadLetter } from '../lib/deadletter.ts'
import { AuditError } from '../lib/errors.ts'
import { checkpointHash, generateSealKey, type SealCheckpoint } from '../lib/seal.ts'
import { getCheckpoint, loadSealKey, readHead } from '../indexer/elasticsearch/seal.ts'
import {
  brokenCover, checkChain, checkpointProblem, checkRecordedHead, classifyDocs, classifyMissing, gapFinding, isCheckpoint, narrowGap,
  neighbourSeqs, sealBook, StreamSequences, unseenSealed, type Finding, type FindingKind, type StoredCheckpoint
} from '../indexer/verify.ts'
import type { AppConfig } from './config.ts'

export interface VerifyOptions {
  /** Index pattern (comma list, `*`, `-exclusion`); default every event index of the deployment. */
  index?: string
  /** `@timestamp` range of the events to verify (RFC 3339, inclusive). */
  from?: string
  to?: string
  publicKeys: KeyObject[]
  graceMs: number
  /** Read the dead-letter topic to tell gaps explained by dead letters from losses. */
  deadLetters?: boolean
  /** A head recorded by an earlier run: it must still be there, unchanged. */
  head?: { seq: number, hash: string }
  now?: Date
}

export interface VerifySummary {
  indices: number
  events: number
  /** Sealed events whose content, hash and seal agree. */
  verified: number
  /** Unsealed events within the grace period (the next sealing round covers them). */
  pending: number
  /** Sealed events of indices deleted by retention (recorded by a retention_index_deleted event). */
  retired: number
  checkpoints: number
  chain_head: number | null
  /** Hash of the head checkpoint: record it with `chain_head` and pass both to a later run's `--head`. */
  chain_head_hash: string | null
  findings: Record<FindingKind, number>
  explained_gaps: number
  clean: boolean
}

const PAGE = 1000
const MAX_GAP_LOOKUPS = 10_000

/** Grace period derived from the indexer's settings: sealing period twice, bulk timeout, a rebalance, a margin. */
export function defaultGraceMs (cfg: Pick<AppConfig, 'indexer' | 'elasticsearch'>): number {
  return 2 * cfg.indexer.seal.sliceMs + cfg.elasticsearch.requestTimeoutMs + 60_000
}

/** ES-style index pattern → predicate: comma-separated, `*` wildcards, `-name` excludes. */
export function indexMatcher (pattern: string): (index: string) => boolean {
  const re = (p: string): RegExp => new RegExp('^' + p.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
  const parts = pattern.split(',').map(s => s.trim()).filter(s => s !== '')
  const include = parts.filter(p => !p.startsWith('-')).map(re)
  const exclude = parts.filter(p => p.startsWith('-')).map(p => re(p.slice(1)))
  return index => include.some(r => r.test(index)) && !exclude.some(r => r.test(index))
}

async function * scan<T> (es: Client, index: string, query: Record<string, unknown>, source: boolean | string[] = true): AsyncGenerator<Array<{ _index: string, _id: string, _source?: T }>> {
  const pit = await es.openPointInTime({ index, keep_alive: '2m', ignore_unavailable: true })
  try {
    let after: unknown[] | undefined
    for (;;) {
      const res = await es.search<T>({
        pit: { id: pit.id, keep_alive: '2m' },
        size: PAGE,
        query,
        _source: source,
        sort: [{ _shard_doc: 'asc' }],
        ...(after === undefined ? {} : { search_after: after as Array<string | number> })
      })
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

async function mget (es: Client, index: string, ids: readonly string[]): Promise<Map<number | string, unknown>> {
  const found = new Map<number | string, unknown>()
  for (let i = 0; i < ids.length; i += PAGE) {
    const res = await es.mget<unknown>({ index, ids: ids.slice(i, i + PAGE) })
    for (const d of res.docs) if ('found' in d && d.found) found.set(d._id, d._source)
  }
  return found
}

/** Existing concrete indices matching `pattern` (open ones; none is not an error). */
async function resolveIndices (es: Client, pattern: string): Promise<string[]> {
  const res = await es.indices.get({ index: pattern, ignore_unavailable: true, allow_no_indices: true, expand_wildcards: 'open' })
  return Object.keys(res).sort()
}

/** index → time of its newest intact `retention_index_deleted` record (indexer/retention/record.ts). */
async function retirements (es: Client, prefix: string, indices: readonly string[]): Promise<Map<string, Date>> {
  const out = new Map<string, Date>()
  if (indices.length === 0) return out
  // Two records per deleted index: a handful, never a page-able amount.
  const res = await es.search<AuditEvent & { retention?: { index?: string } }>({
    index: `${eventIndexPattern(prefix)},-${statsIndexPattern(prefix)}`,
    ignore_unavailable: true,
    allow_no_indices: true,
    size: 10_000,
    query: { bool: { filter: [{ term: { 'event.action': 'retention_index_deleted' } }, { terms: { 'retention.index': [...indices] } }] } }
  })
  for (const h of res.hits.hits) {
    const src = h._source
    const index = src?.retention?.index
    // A record that does not match its own hash explains nothing.
    if (src === undefined || typeof index !== 'string' || !verifyEventHash(src).ok) continue
    const at = new Date(src['@timestamp'])
    if (!Number.isNaN(at.getTime()) && at.getTime() > (out.get(index)?.getTime() ?? 0)) out.set(index, at)
  }
  return out
}

/** Every (stream → sequence numbers) in the dead-letter topic, read from the beginning up to its current end. */
export async function readDeadLetters (cfg: AppConfig, log: Logger): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>()
  const kafka = createKafka(cfg.kafka, log)
  const topic = topicName(cfg.kafka.topicPrefix, 'deadletter')
  const admin = kafka.admin()
  await admin.connect()
  const groupId = `auditline-verify-${randomBytes(6).toString('hex')}`
  try {
    const ends = new Map((await admin.fetchTopicOffsets(topic)).map(p => [p.partition, BigInt(p.high)]))
    const starts = new Map((await admin.fetchTopicOffsets(topic)).map(p => [p.partition, BigInt(p.low)]))
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

export async function verifyDeployment (cfg: AppConfig, opts: VerifyOptions, emit: (f: Finding) => void, log: Logger): Promise<VerifySummary> {
  const es = createEsClient(cfg.elasticsearch)
  try {
    return await run(es, cfg, opts, emit, log)
  } finally {
    await es.close()
  }
}

async function run (es: Client, cfg: AppConfig, opts: VerifyOptions, emit: (f: Finding) => void, log: Logger): Promise<VerifySummary> {
  const prefix = cfg.elasticsearch.indexPrefix
  const sealsIndex = sealsIndexName(prefix)
  const pattern = opts.index ?? `${eventIndexPattern(prefix)},-${statsIndexPattern(prefix)}`
  const matches = indexMatcher(pattern)
  const now = opts.now ?? new Date()
  const counts: Record<FindingKind, number> = { changed: 0, deleted: 0, inserted: 0, unsealed: 0, chain: 0, gap: 0 }
  let explainedGaps = 0
  const report = (f: Finding): void => {
    if (f.explained === true) explainedGaps++
    else counts[f.kind]++
    emit(f)
  }

  // 1. The checkpoints whose events overlap the range, and the chain around them.
  const head = await readHead(es, sealsIndex)
  const headSeq = head !== null && isCheckpoint(head.cp) ? head.cp.seq : -1
  const cps: StoredCheckpoint[] = []
  if (head !== null) {
    const range: Array<Record<string, unknown>> = []
    if (opts.from !== undefined) range.push({ range: { to: { gte: opts.from } } })
    if (opts.to !== undefined) range.push({ range: { from: { lte: opts.to } } })
    for await (const page of scan<unknown>(es, sealsIndex, { bool: { filter: range } })) {
      for (const h of page) {
        const index = (h._source as { index?: unknown } | undefined)?.index
        // A checkpoint too broken to name its index is everyone's business.
        if (typeof index !== 'string' || matches(index)) cps.push({ docId: h._id, cp: h._source })
      }
    }
  }
  const neighbours = new Map<number, StoredCheckpoint | null>()
  const wanted = neighbourSeqs(cps, headSeq)
  if (wanted.length > 0) {
    const found = await mget(es, sealsIndex, wanted.map(checkpointDocId))
    for (const seq of wanted) {
      const id = checkpointDocId(seq)
      neighbours.set(seq, found.has(id) ? { docId: id, cp: found.get(id) } : null)
    }
  }
  const chain = checkChain(cps, neighbours, opts.publicKeys, sealsIndex, headSeq)
  chain.findings.forEach(report)
  if (opts.head !== undefined) {
    const f = checkRecordedHead(opts.head, await getCheckpoint(es, sealsIndex, opts.head.seq), sealsIndex)
    if (f !== undefined) report(f)
  }
  const book = sealBook(chain.trusted)
  const broken = brokenCover(chain.untrusted)
  const headOk = head !== null && checkpointProblem(head, opts.publicKeys) === undefined
  const newest = [...chain.trusted, ...(headOk ? [head.cp] : [])].reduce<SealCheckpoint | undefined>((a, c) => (a === undefined || c.signed_at > a.signed_at ? c : a), undefined)
  const lastSealedAt = newest === undefined ? null : new Date(newest.signed_at)
  log.debug({ checkpoints: cps.length, head: headSeq }, 'Checkpoints read.')

  // 2. Index by index: the events in range, then the sealed ids not seen among them.
  const existing = await resolveIndices(es, pattern)
  const indices = [...new Set([...existing, ...book.keys()])].filter(i => i !== sealsIndex).sort()
  const retired = await retirements(es, prefix, indices)
  const ts: Record<string, string> = {}
  if (opts.from !== undefined) ts.gte = opts.from
  if (opts.to !== undefined) ts.lte = opts.to
  const query = Object.keys(ts).length === 0 ? { match_all: {} } : { range: { '@timestamp': ts } }
  const seqs = new StreamSequences()
  let events = 0
  let verified = 0
  let pending = 0
  let retiredCount = 0
  const existingSet = new Set(existing)
  for (const index of indices) {
    const seen = new Set<string>()
    if (existingSet.has(index)) {
      for await (const page of scan<unknown>(es, index, query)) {
        const docs = page.map(h => ({ index: h._index, id: h._id, source: h._source }))
        events += docs.length
        for (const d of docs) seqs.add(d)
        const r = classifyDocs(docs, book, broken, { now, graceMs: opts.graceMs, lastSealedAt })
        r.findings.forEach(report)
        verified += r.verified
        pending += r.pending
        for (const id of r.seen.get(index) ?? []) seen.add(id)
      }
    }
    const unseen = unseenSealed(index, book, seen, { ...(opts.from === undefined ? {} : { from: opts.from }), ...(opts.to === undefined ? {} : { to: opts.to }) })
    if (unseen.length === 0) continue
    const found = existingSet.has(index) ? await mget(es, index, unseen) : new Map()
    const m = classifyMissing(index, unseen, found as Map<string, unknown>, book, retired.get(index))
    m.findings.forEach(report)
    verified += m.verified
    retiredCount += m.retired
  }

  // 3. Gaps in the streams' sequence numbers, confirmed against the whole deployment (an event with a
  //    sequence number in the gap may lie outside the range), then explained by dead letters if asked.
  const all = `${eventIndexPattern(prefix)},-${statsIndexPattern(prefix)}`
  const gaps = seqs.gaps()
  const dead = opts.deadLetters === true && gaps.length > 0 ? await readDeadLetters(cfg, log) : undefined
  for (const [i, gap] of gaps.entries()) {
    let remaining = [gap]
    if (i < MAX_GAP_LOOKUPS) {
      const res = await es.search<{ event?: { sequence?: number } }>({
        index: all,
        ignore_unavailable: true,
        allow_no_indices: true,
        size: Math.min(gap.to - gap.from + 1, 10_000),
        _source: ['event.sequence'],
        query: { bool: { filter: [{ term: { 'auditline.stream': gap.stream } }, { range: { 'event.sequence': { gte: gap.from, lte: gap.to } } }] } }
      })
      const found = new Set(res.hits.hits.map(h => h._source?.event?.sequence).filter((n): n is number => typeof n === 'number'))
      remaining = narrowGap(gap, found)
    }
    for (const g of remaining) report(gapFinding(g, dead === undefined ? undefined : (dead.get(g.stream) ?? new Set())))
  }

  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  return {
    indices: indices.length,
    events,
    verified,
    pending,
    retired: retiredCount,
    checkpoints: cps.length,
    chain_head: headSeq < 0 ? null : headSeq,
    chain_head_hash: head !== null && isCheckpoint(head.cp) ? checkpointHash(head.cp) : null,
    findings: counts,
    explained_gaps: explainedGaps,
    clean: total === 0
  }
}

/** Flags of `auditline verify` as commander hands them over. */
export interface VerifyFlags { index?: string, from?: string, to?: string, publicKey?: string[], graceMs?: string, deadLetters?: boolean, head?: string }

/**
 * Turns the flags into options: the public keys from `--public-key` files, else the one derived from the
 * configured seal key (an auditor holds only public keys; an operator may verify with the indexer's config).
 */
export function verifyOptionsFrom (cfg: AppConfig, flags: VerifyFlags): VerifyOptions {
  const usage = (msg: string): AuditError => new AuditError('AUD_ERR_CLI_USAGE', [msg])
  for (const [name, v] of [['--from', flags.from], ['--to', flags.to]] as const) {
    if (v !== undefined && Number.isNaN(Date.parse(v))) throw usage(`${name} is not an RFC 3339 time: ${v}`)
  }
  const publicKeys: KeyObject[] = []
  for (const file of flags.publicKey ?? []) {
    let pem: string
    try {
      pem = readFileSync(file, 'utf8')
    } catch (err) {
      throw usage(`cannot read --public-key ${file}: ${(err as Error).message}`)
    }
    try {
      const k = createPublicKey(pem)
      if (k.asymmetricKeyType !== 'ed25519') throw new Error(`an ${String(k.asymmetricKeyType)} key, not Ed25519`)
      publicKeys.push(k)
    } catch (err) {
      throw usage(`--public-key ${file} is not an Ed25519 public key: ${(err as Error).message}`)
    }
  }
  if (publicKeys.length === 0) {
    if (cfg.indexer.seal.privateKeyFile === undefined && cfg.indexer.seal.privateKey === undefined) {
      throw usage('give --public-key FILE (the seal public key from auditline keygen) or configure indexer.seal.privateKeyFile')
    }
    publicKeys.push(createPublicKey(loadSealKey(cfg.indexer.seal).key))
  }
  let graceMs = defaultGraceMs(cfg)
  if (flags.graceMs !== undefined) {
    graceMs = Number(flags.graceMs)
    if (!Number.isInteger(graceMs) || graceMs < 0) throw usage(`--grace-ms must be a whole number of milliseconds ≥ 0, got ${flags.graceMs}`)
  }
  let head: { seq: number, hash: string } | undefined
  if (flags.head !== undefined) {
    const m = /^(\d+):([0-9a-f]{64})$/.exec(flags.head)
    if (m === null) throw usage(`--head must be SEQ:HASH (chain_head and chain_head_hash of an earlier summary), got ${flags.head}`)
    head = { seq: Number(m[1]), hash: m[2] as string }
  }
  return {
    publicKeys,
    graceMs,
    ...(head === undefined ? {} : { head }),
    ...(flags.index === undefined ? {} : { index: flags.index }),
    ...(flags.from === undefined ? {} : { from: flags.from }),
    ...(flags.to === undefined ? {} : { to: flags.to }),
    ...(flags.deadLetters === true ? { deadLetters: true } : {})
  }
}

/** `auditline keygen`: a new Ed25519 key pair, the private key readable by its owner only. Never overwrites. */
export async function writeKeyPair (prefix: string): Promise<{ privateFile: string, publicFile: string, keyId: string }> {
  const k = generateSealKey()
  const privateFile = `${prefix}.pem`
  const publicFile = `${prefix}.pub.pem`
  try {
    await writeFile(privateFile, k.privatePem, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw new AuditError('AUD_ERR_CLI_USAGE', [`cannot create ${privateFile} (an existing key is never overwritten): ${(err as Error).message}`])
  }
  await writeFile(publicFile, k.publicPem, { mode: 0o644, flag: 'wx' })
  return { privateFile, publicFile, keyId: k.keyId }
}
