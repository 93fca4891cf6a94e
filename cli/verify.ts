/**
 * `auditline verify`: reads the seal checkpoints and the indexed events from the store — Elasticsearch (and, on
 * request, the dead-letter topic from Kafka), or the embedded SQLite file — and feeds indexer/verify.ts, index by index, so that memory is bounded by
 * the largest daily index. Findings are handed to `emit` as they are found; the summary is returned.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createEsClient, eventIndexPattern } from '../lib/elasticsearch.ts'
import { statsIndexPattern } from '../lib/stats-template.ts'
import { sealsIndexName } from '../lib/seal-template.ts'
import { verifyEventHash, type AuditEvent } from '../lib/ecs.ts'
import type { Logger } from '../lib/log.ts'
import { AuditError } from '../lib/errors.ts'
import { checkpointHash, generateSealKey, type SealCheckpoint } from '../lib/seal.ts'
import { loadSealKey } from '../indexer/elasticsearch/seal.ts'
import { ElasticsearchVerifySource, readDeadLetters } from '../indexer/elasticsearch/verify-source.ts'
import type { VerifySource } from '../indexer/store.ts'
import {
  brokenCover, checkChain, checkpointProblem, checkRecordedHead, classifyDocs, classifyMissing, gapFinding, isCheckpoint, narrowGap,
  neighbourSeqs, sealBook, StreamSequences, unseenSealed, type Finding, type FindingKind, type StoredCheckpoint, type TimeRange
} from '../indexer/verify.ts'
import { embeddedFile, isEmbedded, type AppConfig } from './config.ts'
import { indexMatcher } from '../lib/index-pattern.ts'

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

const MAX_GAP_LOOKUPS = 10_000

/** Grace period derived from the indexer's settings: sealing period twice, bulk timeout, a rebalance, a margin. */
export function defaultGraceMs (cfg: Pick<AppConfig, 'indexer' | 'elasticsearch'>): number {
  return 2 * cfg.indexer.seal.sliceMs + cfg.elasticsearch.requestTimeoutMs + 60_000
}

/** The store `auditline verify` reads: the embedded SQLite file, or Elasticsearch (+ Kafka for dead letters). */
export async function openVerifySource (cfg: AppConfig, log: Logger): Promise<VerifySource> {
  if (isEmbedded(cfg)) {
    const { SqliteStore } = await import('../indexer/sqlite/store.ts')
    const { SqliteVerifySource } = await import('../indexer/sqlite/verify-source.ts')
    const file = embeddedFile(cfg)
    // Opening would create a missing file, and an empty store verifies clean: a mistyped path must not.
    if (!existsSync(file)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [`embedded.file ${file} does not exist`])
    const store = SqliteStore.open(file, { indexPrefix: cfg.elasticsearch.indexPrefix })
    return new SqliteVerifySource(store)
  }
  const es = createEsClient(cfg.elasticsearch)
  return new ElasticsearchVerifySource(es, cfg.elasticsearch.indexPrefix, sealsIndexName(cfg.elasticsearch.indexPrefix), async () => await readDeadLetters(cfg.kafka, log))
}

/** index → time of its newest intact `retention_index_deleted` record (indexer/retention/record.ts). */
async function retirements (source: VerifySource, indices: readonly string[]): Promise<Map<string, Date>> {
  const out = new Map<string, Date>()
  for (const rec of await source.retirementRecords(indices)) {
    const src = rec as AuditEvent & { retention?: { index?: string } }
    const index = src.retention?.index
    // A record that does not match its own hash explains nothing.
    if (typeof index !== 'string' || !verifyEventHash(src).ok) continue
    const at = new Date(src['@timestamp'])
    if (!Number.isNaN(at.getTime()) && at.getTime() > (out.get(index)?.getTime() ?? 0)) out.set(index, at)
  }
  return out
}

export async function verifyDeployment (cfg: AppConfig, opts: VerifyOptions, emit: (f: Finding) => void, log: Logger): Promise<VerifySummary> {
  const source = await openVerifySource(cfg, log)
  try {
    return await run(source, cfg.elasticsearch.indexPrefix, opts, emit, log)
  } finally {
    await source.close()
  }
}

async function run (source: VerifySource, prefix: string, opts: VerifyOptions, emit: (f: Finding) => void, log: Logger): Promise<VerifySummary> {
  const sealsIndex = source.sealsName
  const matches = indexMatcher(opts.index ?? `${eventIndexPattern(prefix)},-${statsIndexPattern(prefix)}`)
  const now = opts.now ?? new Date()
  const counts: Record<FindingKind, number> = { changed: 0, deleted: 0, inserted: 0, unsealed: 0, chain: 0, gap: 0 }
  let explainedGaps = 0
  const report = (f: Finding): void => {
    if (f.explained === true) explainedGaps++
    else counts[f.kind]++
    emit(f)
  }
  const range: TimeRange = { ...(opts.from === undefined ? {} : { from: opts.from }), ...(opts.to === undefined ? {} : { to: opts.to }) }

  // 1. The checkpoints whose events overlap the range, and the chain around them.
  const head = await source.readHead()
  const headSeq = head !== null && isCheckpoint(head.cp) ? head.cp.seq : -1
  const cps: StoredCheckpoint[] = []
  if (head !== null) {
    for await (const page of source.checkpoints(range)) {
      for (const s of page) {
        const index = (s.cp as { index?: unknown } | undefined)?.index
        // A checkpoint too broken to name its index is everyone's business.
        if (typeof index !== 'string' || matches(index)) cps.push(s)
      }
    }
  }
  const neighbours = new Map<number, StoredCheckpoint | null>()
  const wanted = neighbourSeqs(cps, headSeq)
  if (wanted.length > 0) {
    const found = await source.getCheckpoints(wanted)
    for (const seq of wanted) neighbours.set(seq, found.get(seq) ?? null)
  }
  const chain = checkChain(cps, neighbours, opts.publicKeys, sealsIndex, headSeq)
  chain.findings.forEach(report)
  if (opts.head !== undefined) {
    const f = checkRecordedHead(opts.head, await source.getCheckpoint(opts.head.seq), sealsIndex)
    if (f !== undefined) report(f)
  }
  const book = sealBook(chain.trusted)
  const broken = brokenCover(chain.untrusted)
  const headOk = head !== null && checkpointProblem(head, opts.publicKeys) === undefined
  const newest = [...chain.trusted, ...(headOk ? [head.cp as SealCheckpoint] : [])].reduce<SealCheckpoint | undefined>((a, c) => (a === undefined || c.signed_at > a.signed_at ? c : a), undefined)
  const lastSealedAt = newest === undefined ? null : new Date(newest.signed_at)
  log.debug({ checkpoints: cps.length, head: headSeq }, 'Checkpoints read.')

  // 2. Index by index: the events in range, then the sealed ids not seen among them.
  const existing = await source.indices(matches)
  const indices = [...new Set([...existing, ...book.keys()])].filter(i => i !== sealsIndex).sort()
  const retired = await retirements(source, indices)
  const seqs = new StreamSequences()
  let events = 0
  let verified = 0
  let pending = 0
  let retiredCount = 0
  const existingSet = new Set(existing)
  for (const index of indices) {
    const seen = new Set<string>()
    if (existingSet.has(index)) {
      for await (const docs of source.docs(index, range)) {
        events += docs.length
        for (const d of docs) seqs.add(d)
        const r = classifyDocs(docs, book, broken, { now, graceMs: opts.graceMs, lastSealedAt })
        r.findings.forEach(report)
        verified += r.verified
        pending += r.pending
        for (const id of r.seen.get(index) ?? []) seen.add(id)
      }
    }
    const unseen = unseenSealed(index, book, seen, range)
    if (unseen.length === 0) continue
    const found = existingSet.has(index) ? await source.getDocs(index, unseen) : new Map<string, unknown>()
    const m = classifyMissing(index, unseen, found, book, retired.get(index))
    m.findings.forEach(report)
    verified += m.verified
    retiredCount += m.retired
  }

  // 3. Gaps in the streams' sequence numbers, confirmed against the whole deployment (an event with a
  //    sequence number in the gap may lie outside the range), then explained by dead letters if asked.
  const gaps = seqs.gaps()
  const dead = opts.deadLetters === true && gaps.length > 0 ? await source.deadLetters() : undefined
  for (const [i, gap] of gaps.entries()) {
    let remaining = [gap]
    if (i < MAX_GAP_LOOKUPS) remaining = narrowGap(gap, await source.sequencesIn(gap.stream, gap.from, gap.to))
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
