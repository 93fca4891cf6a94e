/**
 * The pure core of `auditline verify` (#5, docs/integrity.md): given seal checkpoints, indexed documents and
 * the public keys, it names every event changed, deleted or inserted after sealing, every break in the
 * checkpoint chain and every gap in a stream's sequence numbers. No I/O: cli/verify.ts reads Elasticsearch
 * (one index at a time, so memory is bounded by the largest daily index) and feeds these functions.
 *
 * Finding kinds:
 * - `changed`  a sealed event's content no longer hashes to its `event.hash`, or its `event.hash` is not the one
 *              the seal holds (content and hash replaced together), or one id was sealed with two hashes;
 * - `deleted`  a sealed event is not in its index;
 * - `inserted` an indexed event no valid seal covers although the indexer sealed after it was indexed (plus the
 *              grace period), or one that claims no or a future `event.ingested`;
 * - `unsealed` an indexed event no valid seal covers and no checkpoint since (the indexer may be stopped: its
 *              restart re-indexes and seals it), or one covered only by checkpoints that failed verification;
 * - `chain`    a checkpoint that is malformed, stored under another seq, signed by an unknown key, whose signature
 *              or root does not verify, whose `prev` is not the hash of its predecessor, or a missing seq;
 * - `gap`      sequence numbers missing in a collector stream (`explained` when dead letters account for them).
 */
import type { KeyObject } from 'node:crypto'
import { eventHash } from '../lib/ecs.ts'
import { checkpointHash, keyId, merkleRoot, verifyCheckpointSignature, type SealCheckpoint } from '../lib/seal.ts'
import { checkpointDocId } from '../lib/seal-template.ts'

export type FindingKind = 'changed' | 'deleted' | 'inserted' | 'unsealed' | 'chain' | 'gap'

export interface Finding {
  kind: FindingKind
  /** Index of the event, or the seals index for `chain`. Null for a gap's stream-wide finding. */
  index: string | null
  /** `_id` of the event or checkpoint; null when the finding is about a whole index or a range. */
  id: string | null
  detail: string
  /** Checkpoint seq(s) involved. */
  seq?: number
  stream?: string
  /** For `gap`: the missing sequence numbers (inclusive). */
  sequence?: { from: number, to: number }
  /** For `gap`: dead letters account for every missing number. Not counted as a failure. */
  explained?: boolean
}

/** A checkpoint as stored: its document id and `_source`, not trusted until checked. */
export interface StoredCheckpoint { docId: string, cp: unknown }

/** An indexed document: where it is and its `_source`, not trusted. */
export interface IndexedDoc { index: string, id: string, source: unknown }

const HEX64 = /^[0-9a-f]{64}$/
const isStr = (v: unknown): v is string => typeof v === 'string'
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0

/** Shape check of a stored checkpoint (types only; signature and root are checked separately). */
export function isCheckpoint (v: unknown): v is SealCheckpoint {
  if (typeof v !== 'object' || v === null) return false
  const c = v as Record<string, unknown>
  return c.v === 1 && isInt(c.seq) && isStr(c.index) && isStr(c.from) && isStr(c.to) &&
    Array.isArray(c.ids) && c.ids.every(isStr) && Array.isArray(c.hashes) && c.hashes.every(h => isStr(h) && HEX64.test(h)) &&
    Array.isArray(c.timestamps) && c.timestamps.every(isStr) &&
    isInt(c.size) && isStr(c.root) && (c.prev === null || isStr(c.prev)) && isStr(c.key_id) && isStr(c.signed_at) && isStr(c.sig)
}

/** Why a checkpoint cannot be trusted on its own (shape, id, root, key, signature); undefined when it can. */
export function checkpointProblem (s: StoredCheckpoint, keys: readonly KeyObject[]): string | undefined {
  if (!isCheckpoint(s.cp)) return 'not a well-formed checkpoint'
  const cp = s.cp
  if (s.docId !== checkpointDocId(cp.seq)) return `stored as ${s.docId} but says seq ${cp.seq}`
  if (cp.ids.length !== cp.size || cp.hashes.length !== cp.size || cp.timestamps.length !== cp.size) return `size ${cp.size} but ${cp.ids.length} ids, ${cp.hashes.length} hashes and ${cp.timestamps.length} timestamps`
  if (merkleRoot(cp.hashes) !== cp.root) return 'its Merkle root does not match its leaves'
  const key = keys.find(k => keyId(k) === cp.key_id)
  if (key === undefined) return `signed by key ${cp.key_id}, which is not one of the given public keys`
  if (!verifyCheckpointSignature(cp, key)) return 'its signature does not verify'
  return undefined
}

/** Seqs to fetch besides `cps` to check every link: each one's predecessor and (below the head) successor. */
export function neighbourSeqs (cps: readonly StoredCheckpoint[], headSeq: number): number[] {
  const have = new Set<number>()
  for (const s of cps) if (isCheckpoint(s.cp)) have.add(s.cp.seq)
  const want = new Set<number>()
  for (const seq of have) {
    if (seq > 0 && !have.has(seq - 1)) want.add(seq - 1)
    if (seq < headSeq && !have.has(seq + 1)) want.add(seq + 1)
  }
  return [...want].sort((a, b) => a - b)
}

export interface ChainResult {
  findings: Finding[]
  /** Checkpoints whose shape, id, root and signature verify: only their leaves count as sealed. */
  trusted: SealCheckpoint[]
  /** The others (their leaves are reported as covered by a broken checkpoint, never as sealed). */
  untrusted: StoredCheckpoint[]
}

/**
 * Checks the checkpoints of interest and their links. `neighbours` holds the fetched predecessors and successors
 * (null: that seq does not exist). `headSeq` is the newest seq of the chain (-1 for an empty chain).
 */
export function checkChain (cps: readonly StoredCheckpoint[], neighbours: ReadonlyMap<number, StoredCheckpoint | null>, keys: readonly KeyObject[], sealsIndex: string, headSeq: number): ChainResult {
  const findings: Finding[] = []
  const trusted: SealCheckpoint[] = []
  const untrusted: StoredCheckpoint[] = []
  const bySeq = new Map<number, StoredCheckpoint | null>(neighbours)
  const sorted = [...cps].sort((a, b) => (a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0))
  for (const s of sorted) if (isCheckpoint(s.cp)) bySeq.set(s.cp.seq, s)
  const missing = new Set<number>()
  const reportMissing = (seq: number, why: string): void => {
    if (missing.has(seq)) return
    missing.add(seq)
    findings.push({ kind: 'chain', index: sealsIndex, id: checkpointDocId(seq), seq, detail: `checkpoint ${seq} is missing (${why}): the events it sealed are no longer covered` })
  }
  const seen = new Map<number, string>()
  for (const s of sorted) {
    const problem = checkpointProblem(s, keys)
    if (problem !== undefined) {
      findings.push({ kind: 'chain', index: sealsIndex, id: s.docId, ...(isCheckpoint(s.cp) ? { seq: s.cp.seq } : {}), detail: `checkpoint ${s.docId}: ${problem}` })
      untrusted.push(s)
    }
    if (!isCheckpoint(s.cp)) continue
    const cp = s.cp
    const other = seen.get(cp.seq)
    if (other !== undefined) findings.push({ kind: 'chain', index: sealsIndex, id: s.docId, seq: cp.seq, detail: `checkpoints ${other} and ${s.docId} both say seq ${cp.seq}` })
    seen.set(cp.seq, s.docId)
    if (problem === undefined) trusted.push(cp)
    if (cp.seq === 0) {
      if (cp.prev !== null) findings.push({ kind: 'chain', index: sealsIndex, id: s.docId, seq: 0, detail: 'the first checkpoint names a predecessor' })
    } else {
      const pred = bySeq.get(cp.seq - 1)
      if (pred === null) reportMissing(cp.seq - 1, `checkpoint ${cp.seq} follows it`)
      else if (pred !== undefined) {
        const predHash = isCheckpoint(pred.cp) ? checkpointHash(pred.cp) : undefined
        if (cp.prev !== predHash) findings.push({ kind: 'chain', index: sealsIndex, id: s.docId, seq: cp.seq, detail: `prev ${String(cp.prev)} is not the hash of checkpoint ${cp.seq - 1} as stored (${String(predHash)}): checkpoint ${cp.seq - 1} was changed or replaced` })
      }
    }
    const succ = bySeq.get(cp.seq + 1)
    if (cp.seq < headSeq && succ === null) reportMissing(cp.seq + 1, `the chain goes on to ${headSeq}`)
    // A successor outside the checkpoints of interest is not checked above: check its link to this one here.
    if (succ !== null && succ !== undefined && !cps.includes(succ) && isCheckpoint(succ.cp) && succ.cp.prev !== checkpointHash(cp)) {
      findings.push({ kind: 'chain', index: sealsIndex, id: succ.docId, seq: succ.cp.seq, detail: `prev ${String(succ.cp.prev)} is not the hash of checkpoint ${cp.seq} as stored (${checkpointHash(cp)}): checkpoint ${cp.seq} was changed or replaced` })
    }
  }
  return { findings, trusted, untrusted }
}

/**
 * A head recorded by an earlier run (`chain_head` and `chain_head_hash` of its summary): that checkpoint must still
 * exist with that hash. This is what exposes a chain cut short at its end, which links alone cannot show.
 */
export function checkRecordedHead (recorded: { seq: number, hash: string }, stored: StoredCheckpoint | null, sealsIndex: string): Finding | undefined {
  const id = checkpointDocId(recorded.seq)
  if (stored === null) return { kind: 'chain', index: sealsIndex, id, seq: recorded.seq, detail: `checkpoint ${recorded.seq}, recorded earlier as the head, is missing: the chain was cut short or the checkpoint deleted` }
  const hash = isCheckpoint(stored.cp) ? checkpointHash(stored.cp) : undefined
  if (hash !== recorded.hash) return { kind: 'chain', index: sealsIndex, id, seq: recorded.seq, detail: `checkpoint ${recorded.seq} hashes to ${String(hash)}, not to ${recorded.hash} as recorded earlier: it was changed or replaced` }
  return undefined
}

export interface Sealing { seq: number, hash: string, timestamp: string, signedAt: string }

/** index → id → every trusted sealing of it (a replay seals an event again). */
export type SealBook = Map<string, Map<string, Sealing[]>>

export function sealBook (trusted: readonly SealCheckpoint[]): SealBook {
  const book: SealBook = new Map()
  for (const cp of trusted) {
    let ids = book.get(cp.index)
    if (ids === undefined) { ids = new Map(); book.set(cp.index, ids) }
    cp.ids.forEach((id, i) => {
      const list = ids.get(id) ?? []
      list.push({ seq: cp.seq, hash: cp.hashes[i] as string, timestamp: cp.timestamps[i] as string, signedAt: cp.signed_at })
      ids.set(id, list)
    })
  }
  return book
}

/** index → id → seqs of untrusted checkpoints that list it. */
export function brokenCover (untrusted: readonly StoredCheckpoint[]): Map<string, Map<string, number[]>> {
  const out = new Map<string, Map<string, number[]>>()
  for (const s of untrusted) {
    const c = s.cp as Partial<SealCheckpoint> | null
    if (c === null || typeof c !== 'object' || !isStr(c.index) || !Array.isArray(c.ids)) continue
    let ids = out.get(c.index)
    if (ids === undefined) { ids = new Map(); out.set(c.index, ids) }
    for (const id of c.ids) if (isStr(id)) ids.set(id, [...(ids.get(id) ?? []), typeof c.seq === 'number' ? c.seq : -1])
  }
  return out
}

export interface ClassifyOptions {
  now: Date
  /**
   * How long after `event.ingested` an event may legitimately be unsealed: the sealing period, the bulk request
   * timeout (ingested is stamped when the accepted attempt was sent) and a consumer-group rebalance.
   */
  graceMs: number
  /** `signed_at` of the newest checkpoint that verifies (the sealing was alive then); null if none. */
  lastSealedAt: Date | null
}

export interface DocResult {
  findings: Finding[]
  /** Unsealed events still within the grace period. */
  pending: number
  /** Sealed events that verified. */
  verified: number
}

const FUTURE_SKEW_MS = 5 * 60_000

function latest (s: readonly Sealing[]): Sealing {
  return s.reduce((a, b) => (b.seq > a.seq ? b : a))
}

function docEvent (source: unknown): { event?: Record<string, unknown>, hash?: string, recomputed?: string, ingested?: string } {
  if (typeof source !== 'object' || source === null) return {}
  const ev = (source as { event?: unknown }).event
  if (typeof ev !== 'object' || ev === null) return {}
  const e = ev as Record<string, unknown>
  // eventHash only reads `event` and canonicalizes the rest: safe on any JSON object.
  const recomputed = eventHash(source as Parameters<typeof eventHash>[0])
  return { event: e, ...(isStr(e.hash) ? { hash: e.hash } : {}), recomputed, ...(isStr(e.ingested) ? { ingested: e.ingested } : {}) }
}

/** Checks a sealed document against its sealings. */
export function checkSealed (doc: IndexedDoc, sealings: readonly Sealing[]): Finding[] {
  const out: Finding[] = []
  const last = latest(sealings)
  const hashes = [...new Set(sealings.map(s => s.hash))]
  if (hashes.length > 1) {
    out.push({ kind: 'changed', index: doc.index, id: doc.id, seq: last.seq, detail: `sealed with different hashes (${sealings.map(s => `checkpoint ${s.seq}: ${s.hash}`).join(', ')}): re-indexed with other content after it was sealed` })
  }
  const d = docEvent(doc.source)
  if (d.event === undefined) {
    out.push({ kind: 'changed', index: doc.index, id: doc.id, seq: last.seq, detail: `sealed in checkpoint ${last.seq}, but the document is no longer an event` })
  } else if (d.hash !== d.recomputed) {
    out.push({ kind: 'changed', index: doc.index, id: doc.id, seq: last.seq, detail: `content changed after sealing: event.hash is ${String(d.hash)}, the content hashes to ${String(d.recomputed)} (checkpoint ${last.seq} sealed ${last.hash})` })
  } else if (d.hash !== last.hash) {
    out.push({ kind: 'changed', index: doc.index, id: doc.id, seq: last.seq, detail: `replaced after sealing: checkpoint ${last.seq} sealed event.hash ${last.hash}, the index holds ${String(d.hash)} (content and hash both rewritten)` })
  }
  return out
}

/**
 * Classifies the documents of one index: sealed ones against their seals, the others as pending, inserted or
 * unsealed. Returns the ids it saw, so that the caller can look up sealed ids it did not see.
 */
export function classifyDocs (docs: Iterable<IndexedDoc>, book: SealBook, broken: Map<string, Map<string, number[]>>, opts: ClassifyOptions): DocResult & { seen: Map<string, Set<string>> } {
  const findings: Finding[] = []
  const seen = new Map<string, Set<string>>()
  let pending = 0
  let verified = 0
  for (const doc of docs) {
    let s = seen.get(doc.index)
    if (s === undefined) { s = new Set(); seen.set(doc.index, s) }
    s.add(doc.id)
    const sealings = book.get(doc.index)?.get(doc.id)
    if (sealings !== undefined) {
      const f = checkSealed(doc, sealings)
      if (f.length === 0) verified++
      findings.push(...f)
      continue
    }
    const f = classifyUnsealed(doc, broken.get(doc.index)?.get(doc.id), opts)
    if (f === undefined) pending++
    else findings.push(f)
  }
  return { findings, pending, verified, seen }
}

/** An event no trusted seal covers: undefined while it is within the grace period (pending). */
export function classifyUnsealed (doc: IndexedDoc, brokenSeqs: readonly number[] | undefined, opts: ClassifyOptions): Finding | undefined {
  const d = docEvent(doc.source)
  const selfOk = d.event !== undefined && d.hash !== undefined && d.hash === d.recomputed
  const also = selfOk ? '' : d.event === undefined ? ' (and it is not an event)' : ' (and its content does not match its event.hash)'
  const base = { index: doc.index, id: doc.id }
  const ingested = d.ingested === undefined ? NaN : Date.parse(d.ingested)
  const now = opts.now.getTime()
  if (Number.isNaN(ingested)) return { kind: 'inserted', ...base, detail: `not sealed and has no valid event.ingested: the indexer stamps every event it indexes${also}` }
  if (ingested > now + FUTURE_SKEW_MS) return { kind: 'inserted', ...base, detail: `not sealed and claims to have been indexed in the future (event.ingested ${String(d.ingested)})${also}` }
  if (brokenSeqs !== undefined) return { kind: 'unsealed', ...base, detail: `covered only by checkpoint(s) ${brokenSeqs.join(', ')}, which failed verification${also}` }
  if (now - ingested < opts.graceMs) {
    // Within the grace period: the next sealing round covers it. A changed self-hash is a change all the same.
    return selfOk ? undefined : { kind: 'changed', ...base, detail: `not sealed yet, but its content does not match its event.hash ${String(d.hash)} (content hashes to ${String(d.recomputed)})` }
  }
  if (opts.lastSealedAt !== null && opts.lastSealedAt.getTime() > ingested + opts.graceMs) {
    return { kind: 'inserted', ...base, detail: `no seal covers it, although it was indexed at ${String(d.ingested)} and the indexer sealed until ${opts.lastSealedAt.toISOString()}: it was not indexed by the indexer${also}` }
  }
  return { kind: 'unsealed', ...base, detail: `indexed at ${String(d.ingested)} and not sealed, and no checkpoint was signed since: the indexer may be stopped (its restart re-indexes and seals such events) or the event was inserted${also}` }
}

/** A `@timestamp` range (inclusive, as instants); open ends when absent. */
export interface TimeRange { from?: string, to?: string }

export function inRange (timestamp: string, range: TimeRange): boolean {
  const t = Date.parse(timestamp)
  if (Number.isNaN(t)) return true
  return (range.from === undefined || t >= Date.parse(range.from)) && (range.to === undefined || t <= Date.parse(range.to))
}

/**
 * Sealed ids of `index` in the range (by the `@timestamp` the seal recorded) that the scan did not see. The
 * caller looks them up by id (a changed `@timestamp` moves an event out of the scan, not out of its seal) and
 * passes what it found to `classifyMissing`.
 */
export function unseenSealed (index: string, book: SealBook, seen: ReadonlySet<string> | undefined, range: TimeRange = {}): string[] {
  const ids = book.get(index)
  if (ids === undefined) return []
  return [...ids].filter(([id, s]) => seen?.has(id) !== true && s.some(x => inRange(x.timestamp, range))).map(([id]) => id)
}

export function classifyMissing (index: string, ids: readonly string[], found: ReadonlyMap<string, unknown>, book: SealBook, retiredBefore?: Date): { findings: Finding[], verified: number, retired: number } {
  const findings: Finding[] = []
  let verified = 0
  let retired = 0
  for (const id of ids) {
    const sealings = book.get(index)?.get(id) ?? []
    if (sealings.length === 0) continue
    const source = found.get(id)
    if (source === undefined) {
      const last = latest(sealings)
      if (retiredBefore !== undefined && Date.parse(last.signedAt) < retiredBefore.getTime()) { retired++; continue }
      findings.push({ kind: 'deleted', index, id, seq: last.seq, detail: `sealed in checkpoint ${last.seq} (event.hash ${last.hash}) and no longer in the index` })
      continue
    }
    const f = checkSealed({ index, id, source }, sealings)
    if (f.length === 0) verified++
    findings.push(...f)
  }
  return { findings, verified, retired }
}

/** Sequence numbers seen per stream, with where each number was (to name the neighbours of a gap). */
export class StreamSequences {
  readonly #streams = new Map<string, Map<number, { index: string, id: string }>>()

  add (doc: IndexedDoc): void {
    const src = doc.source as { event?: { sequence?: unknown }, auditline?: { stream?: unknown } } | null
    const seq = src?.event?.sequence
    const stream = src?.auditline?.stream
    if (!isInt(seq) || !isStr(stream)) return
    let m = this.#streams.get(stream)
    if (m === undefined) { m = new Map(); this.#streams.set(stream, m) }
    m.set(seq, { index: doc.index, id: doc.id })
  }

  /** Runs of numbers missing between the lowest and highest number seen of each stream. */
  gaps (): Gap[] {
    const out: Gap[] = []
    for (const stream of [...this.#streams.keys()].sort()) {
      const m = this.#streams.get(stream) as Map<number, { index: string, id: string }>
      const seqs = [...m.keys()].sort((a, b) => a - b)
      for (let i = 1; i < seqs.length; i++) {
        const a = seqs[i - 1] as number
        const b = seqs[i] as number
        if (b > a + 1) out.push({ stream, from: a + 1, to: b - 1, before: m.get(a) as { index: string, id: string }, after: m.get(b) as { index: string, id: string } })
      }
    }
    return out
  }
}

export interface Gap { stream: string, from: number, to: number, before: { index: string, id: string }, after: { index: string, id: string } }

/** Removes numbers found elsewhere (outside the scanned range) from a gap; returns the runs still missing. */
export function narrowGap (gap: Gap, found: ReadonlySet<number>): Gap[] {
  const out: Gap[] = []
  let start: number | undefined
  for (let n = gap.from; n <= gap.to + 1; n++) {
    const missing = n <= gap.to && !found.has(n)
    if (missing && start === undefined) start = n
    if (!missing && start !== undefined) { out.push({ ...gap, from: start, to: n - 1 }); start = undefined }
  }
  return out
}

/** A finding for a gap; `deadLettered` holds the stream's sequence numbers found in the dead-letter topic (undefined: not checked). */
export function gapFinding (gap: Gap, deadLettered?: ReadonlySet<number>): Finding {
  const n = gap.to - gap.from + 1
  const nums = gap.from === gap.to ? `${gap.from}` : `${gap.from}–${gap.to}`
  const base = { kind: 'gap' as const, index: gap.after.index, id: gap.after.id, stream: gap.stream, sequence: { from: gap.from, to: gap.to } }
  const where = `between ${gap.before.id} (${gap.before.index}) and ${gap.after.id}`
  if (deadLettered === undefined) return { ...base, detail: `stream ${gap.stream}: ${n} sequence number(s) ${nums} missing ${where}; they may be dead letters (run with --dead-letters to check)` }
  let explained = 0
  for (let s = gap.from; s <= gap.to; s++) if (deadLettered.has(s)) explained++
  if (explained === n) return { ...base, explained: true, detail: `stream ${gap.stream}: sequence number(s) ${nums} ${where} are dead letters (not indexed, kept with their reason in the dead-letter topic)` }
  return { ...base, detail: `stream ${gap.stream}: ${n - explained} of the ${n} sequence number(s) ${nums} ${where} are missing and not dead letters: lost or deleted` }
}

/** Everything in memory at once, for tests and small deployments: the composition cli/verify.ts performs index by index. */
export function verifyInMemory (input: {
  checkpoints: readonly StoredCheckpoint[]
  docs: readonly IndexedDoc[]
  keys: readonly KeyObject[]
  sealsIndex: string
  now: Date
  graceMs: number
  deadLettered?: ReadonlyMap<string, ReadonlySet<number>>
}): { findings: Finding[], pending: number, verified: number } {
  const headSeq = Math.max(-1, ...input.checkpoints.map(s => (isCheckpoint(s.cp) ? s.cp.seq : -1)))
  const chain = checkChain(input.checkpoints, new Map(neighbourSeqs(input.checkpoints, headSeq).map(seq => [seq, null])), input.keys, input.sealsIndex, headSeq)
  const book = sealBook(chain.trusted)
  const lastSealedAt = chain.trusted.reduce<Date | null>((a, cp) => (a === null || Date.parse(cp.signed_at) > a.getTime() ? new Date(cp.signed_at) : a), null)
  const docs = classifyDocs(input.docs, book, brokenCover(chain.untrusted), { now: input.now, graceMs: input.graceMs, lastSealedAt })
  const findings = [...chain.findings, ...docs.findings]
  let verified = docs.verified
  for (const index of [...book.keys()].sort()) {
    const m = classifyMissing(index, unseenSealed(index, book, docs.seen.get(index)), new Map(), book)
    findings.push(...m.findings)
    verified += m.verified
  }
  const seqs = new StreamSequences()
  for (const d of input.docs) seqs.add(d)
  for (const g of seqs.gaps()) findings.push(gapFinding(g, input.deadLettered === undefined ? undefined : (input.deadLettered.get(g.stream) ?? new Set())))
  return { findings, pending: docs.pending, verified }
}
