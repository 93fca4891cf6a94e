/**
 * Evidence bundles (docs/exports.md): the events of an export, for each its RFC 6962 inclusion proof against
 * the signed root of the checkpoint that sealed it, the signed root statements (with the chain links between
 * them), the public key, a manifest with SHA-256 of every file, and a README for the recipient. Pure: files are
 * built and checked in memory, so that the API, the CLI and the tests share one code path.
 *
 * Selective disclosure: a bundle never holds a whole checkpoint (its ids, hashes and timestamps would tell the
 * recipient about events outside the export); it holds root statements, signed separately (`root_sig`), and
 * proofs, which reveal only sibling hashes.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto'
import { eventHash, type AuditEvent } from './ecs.ts'
import { nodeHash, verifyInclusion } from './merkle.ts'
import {
  eventLeaf, keyId, rootStatement, statementHash, verifyRootStatement,
  type RootStatement, type SealCheckpoint
} from './seal.ts'
import { AuditError } from './errors.ts'

export const BUNDLE_FILES = ['events.ndjson', 'events.csv', 'proofs.ndjson', 'checkpoints.ndjson', 'public-key.pem', 'README.txt'] as const

/** One line of `proofs.ndjson`. */
export interface ProofLine {
  /** `event.id` of the event. */
  id: string
  /** The event's `event.hash` (hex): the leaf data. */
  hash: string
  /** `seq` of the root statement (checkpoint) the proof leads to. */
  seq: number
  /** Position of the leaf in that tree, from 0. */
  leaf: number
  /** Leaves in that tree. */
  size: number
  /** RFC 6962 audit path, hex, leaf to root. */
  proof: string[]
}

/** One line of `checkpoints.ndjson`. */
export type StatementLine = RootStatement & { root_sig: string }

export interface ExportMeta {
  /** Export id (job id). */
  id: string
  caseId: string
  reason: string
  /** Who asked: API key owner or the CLI's user. */
  requester: string
  /** The typed filters the export ran. */
  query: Record<string, unknown>
  created: string
}

export interface Manifest {
  format: 'auditline.evidence'
  v: 1
  id: string
  case_id: string
  reason: string
  requester: string
  created: string
  query: Record<string, unknown>
  key_id: string
  counts: { events: number, checkpoints: number, unsealed_skipped: number }
  /** SHA-256 (hex) and size of every other file of the bundle. */
  files: Record<string, { sha256: string, bytes: number }>
}

export interface BuildInput {
  meta: ExportMeta
  /** Events in export order (as stored: `event.hash` set). */
  events: readonly AuditEvent[]
  /** Whole checkpoints that seal the events (any order; the lowest seq holding an id is used). */
  checkpoints: readonly SealCheckpoint[]
  /**
   * Root statements of every checkpoint between the lowest and the highest used seq (inclusive), so that the
   * chain links between the used ones can be shown. Checkpoints in `checkpoints` need not be repeated here.
   */
  chain: ReadonlyArray<Omit<SealCheckpoint, 'ids' | 'hashes' | 'timestamps'> | SealCheckpoint>
  publicKeyPem: string
  /** Matching events left out because no checkpoint sealed them yet (recorded in the manifest). */
  unsealedSkipped?: number
}

export type Bundle = Map<string, Buffer>

/**
 * RFC 6962 inclusion proofs for many leaves of one tree: the same PATH(m, D[n]) as merkle.ts `inclusionProof`,
 * but with every subtree hash computed once (a tree has fewer than 2n of them), so that proving all n leaves
 * costs O(n + n log n) hashes instead of O(n²).
 */
export class TreeProver {
  readonly #memo = new Map<number, Buffer>()
  constructor (private readonly leaves: readonly Buffer[]) {}

  #mth (lo: number, hi: number): Buffer {
    if (hi - lo === 1) return this.leaves[lo] as Buffer
    const key = lo * 0x100000 + hi
    let h = this.#memo.get(key)
    if (h === undefined) {
      const k = split(hi - lo)
      h = nodeHash(this.#mth(lo, lo + k), this.#mth(lo + k, hi))
      this.#memo.set(key, h)
    }
    return h
  }

  proof (m: number): Buffer[] {
    if (m < 0 || m >= this.leaves.length) throw new RangeError(`leaf ${m} outside a tree of ${this.leaves.length}`)
    const out: Buffer[] = []
    let lo = 0
    let hi = this.leaves.length
    // Walk down from the root, collecting the sibling of each subtree holding m; PATH lists them leaf first.
    while (hi - lo > 1) {
      const k = split(hi - lo)
      if (m < lo + k) { out.push(this.#mth(lo + k, hi)); hi = lo + k } else { out.push(this.#mth(lo, lo + k)); lo = lo + k }
    }
    return out.reverse()
  }
}

/** Largest power of two strictly less than n (n ≥ 2), as in RFC 6962 §2.1. */
function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

export const CSV_COLUMNS = ['@timestamp', 'event.id', 'event.action', 'event.category', 'event.outcome', 'user.name', 'source.ip', 'host.name', 'auditline.class', 'event.reason', 'event.hash'] as const

function pick (e: AuditEvent, path: string): string {
  let v: unknown = e
  for (const part of path === '@timestamp' ? [path] : path.split('.')) {
    v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[part] : undefined
  }
  if (Array.isArray(v)) return v.map(String).join(';')
  return v === undefined || v === null ? '' : String(v)
}

/** RFC 4180 cell; a leading = + - @ tab or CR is prefixed with ' so that a spreadsheet never runs it as a formula. */
function csvCell (s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

export function eventsCsv (events: readonly AuditEvent[]): string {
  const rows = [CSV_COLUMNS.join(',')]
  for (const e of events) rows.push(CSV_COLUMNS.map(c => csvCell(pick(e, c))).join(','))
  return rows.join('\r\n') + '\r\n'
}

/** Builds the bundle's files. Throws AUD_ERR_EXPORT_BUILD when an event cannot be proven. */
export function buildBundle (input: BuildInput): { bundle: Bundle, manifest: Manifest } {
  const fail = (why: string): AuditError => new AuditError('AUD_ERR_EXPORT_BUILD', [why])
  const pub = createPublicKey(input.publicKeyPem)
  const kid = keyId(pub)
  // id → (checkpoint, position): the lowest seq wins (a replayed event can be sealed twice, same hash).
  const where = new Map<string, { cp: SealCheckpoint, pos: number }>()
  for (const cp of [...input.checkpoints].sort((a, b) => a.seq - b.seq)) {
    cp.ids.forEach((id, pos) => { if (!where.has(id)) where.set(id, { cp, pos }) })
  }
  const provers = new Map<number, TreeProver>()
  const proofs: ProofLine[] = []
  const used = new Set<number>()
  for (const e of input.events) {
    const at = where.get(e.event.id)
    if (at === undefined) throw fail(`event ${e.event.id} is not sealed by any checkpoint given`)
    const { cp, pos } = at
    const sealed = cp.hashes[pos] as string
    if (e.event.hash !== sealed) throw fail(`event ${e.event.id} is stored with hash ${String(e.event.hash)} but checkpoint ${cp.seq} sealed ${sealed}`)
    if (eventHash(e) !== sealed) throw fail(`event ${e.event.id} as stored does not hash to its sealed hash ${sealed}: run auditline verify`)
    if (cp.root_sig === undefined) throw fail(`checkpoint ${cp.seq} has no signed root statement (sealed before root statements existed)`)
    if (cp.key_id !== kid) throw fail(`checkpoint ${cp.seq} is signed by key ${cp.key_id}, not by the configured public key ${kid}`)
    let prover = provers.get(cp.seq)
    if (prover === undefined) { prover = new TreeProver(cp.hashes.map(eventLeaf)); provers.set(cp.seq, prover) }
    proofs.push({ id: e.event.id, hash: sealed, seq: cp.seq, leaf: pos, size: cp.size, proof: prover.proof(pos).map(b => b.toString('hex')) })
    used.add(cp.seq)
  }
  const statements = new Map<number, StatementLine>()
  if (used.size > 0) {
    const lo = Math.min(...used)
    const hi = Math.max(...used)
    for (const c of [...input.chain, ...input.checkpoints]) {
      if (c.seq < lo || c.seq > hi || statements.has(c.seq)) continue
      if (c.root_sig === undefined) throw fail(`checkpoint ${c.seq} in the chain has no signed root statement`)
      statements.set(c.seq, { ...rootStatement(c), root_sig: c.root_sig })
    }
    for (let s = lo; s <= hi; s++) if (!statements.has(s)) throw fail(`checkpoint ${s} of the chain between ${lo} and ${hi} was not given`)
  }
  const files: Array<[string, Buffer]> = [
    ['events.ndjson', Buffer.from(input.events.map(e => JSON.stringify(e) + '\n').join(''))],
    ['events.csv', Buffer.from(eventsCsv(input.events))],
    ['proofs.ndjson', Buffer.from(proofs.map(p => JSON.stringify(p) + '\n').join(''))],
    ['checkpoints.ndjson', Buffer.from([...statements.values()].sort((a, b) => a.seq - b.seq).map(s => JSON.stringify(s) + '\n').join(''))],
    ['public-key.pem', Buffer.from(pub.export({ type: 'spki', format: 'pem' }).toString())],
    ['README.txt', Buffer.from(RECIPIENT_README)]
  ]
  const m = input.meta
  const manifest: Manifest = {
    format: 'auditline.evidence',
    v: 1,
    id: m.id,
    case_id: m.caseId,
    reason: m.reason,
    requester: m.requester,
    created: m.created,
    query: m.query,
    key_id: kid,
    counts: { events: input.events.length, checkpoints: statements.size, unsealed_skipped: input.unsealedSkipped ?? 0 },
    files: Object.fromEntries(files.map(([name, b]) => [name, { sha256: sha256(b), bytes: b.length }]))
  }
  const bundle: Bundle = new Map(files)
  bundle.set('manifest.json', Buffer.from(JSON.stringify(manifest, null, 2) + '\n'))
  return { bundle, manifest }
}

export interface VerifyResult {
  ok: boolean
  /** What is wrong and where, one message each (empty when ok). */
  problems: string[]
  /** Informational notes (e.g. which key was used). */
  notes: string[]
  events: number
  checkpoints: number
}

function lines (b: Buffer | undefined): string[] {
  if (b === undefined) return []
  const text = b.toString('utf8')
  const out = text.split('\n')
  if (out[out.length - 1] === '') out.pop()
  return out
}

function isObj (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const HEX64 = /^[0-9a-f]{64}$/

function isProofLine (v: unknown): v is ProofLine {
  return isObj(v) && typeof v.id === 'string' && typeof v.hash === 'string' && HEX64.test(v.hash) && Number.isInteger(v.seq) &&
    Number.isInteger(v.leaf) && Number.isInteger(v.size) && Array.isArray(v.proof) && v.proof.every(p => typeof p === 'string' && HEX64.test(p))
}

function isStatementLine (v: unknown): v is StatementLine {
  return isObj(v) && v.v === 1 && v.type === 'auditline.root' && Number.isInteger(v.seq) && typeof v.index === 'string' &&
    Number.isInteger(v.size) && typeof v.root === 'string' && HEX64.test(v.root) &&
    (v.prev_statement === null || typeof v.prev_statement === 'string') && typeof v.key_id === 'string' &&
    typeof v.signed_at === 'string' && typeof v.root_sig === 'string'
}

/**
 * Checks a bundle offline. `trustedKey`: the public key the recipient got out of band; without it the
 * bundle's own `public-key.pem` is used (which proves only that the bundle is consistent with itself).
 */
export function verifyBundle (bundle: Bundle, trustedKey?: KeyObject): VerifyResult {
  const problems: string[] = []
  const notes: string[] = []
  const result = (events: number, checkpoints: number): VerifyResult => ({ ok: problems.length === 0, problems, notes, events, checkpoints })

  // 1. Manifest: every file listed, present and unchanged; no file unlisted.
  const mBuf = bundle.get('manifest.json')
  if (mBuf === undefined) { problems.push('manifest.json missing'); return result(0, 0) }
  let manifest: Manifest
  try {
    manifest = JSON.parse(mBuf.toString('utf8')) as Manifest
    if (!isObj(manifest) || manifest.format !== 'auditline.evidence' || !isObj(manifest.files) || !isObj(manifest.counts)) throw new Error('not an auditline evidence manifest')
  } catch (err) {
    problems.push(`manifest.json: ${(err as Error).message}`)
    return result(0, 0)
  }
  for (const name of BUNDLE_FILES) if (!(name in manifest.files)) problems.push(`manifest.json does not list ${name}`)
  for (const [name, want] of Object.entries(manifest.files)) {
    const b = bundle.get(name)
    if (b === undefined) { problems.push(`${name}: missing (listed in manifest.json)`); continue }
    const got = sha256(b)
    if (got !== want.sha256) problems.push(`${name}: changed (sha256 ${got}, manifest.json says ${want.sha256})`)
  }
  for (const name of bundle.keys()) if (name !== 'manifest.json' && !(name in manifest.files)) problems.push(`${name}: extra file, not listed in manifest.json`)

  // 2. The key.
  let key: KeyObject | undefined = trustedKey
  const pemBuf = bundle.get('public-key.pem')
  let bundled: KeyObject | undefined
  try {
    if (pemBuf !== undefined) bundled = createPublicKey(pemBuf.toString('utf8'))
  } catch (err) { problems.push(`public-key.pem: not a public key (${(err as Error).message})`) }
  if (key === undefined) {
    key = bundled
    notes.push('checked against the bundle\'s own public-key.pem: compare its key id with the one the operator published (or pass --public-key)')
  } else if (bundled !== undefined && keyId(bundled) !== keyId(key)) {
    problems.push(`public-key.pem: key ${keyId(bundled)} is not the trusted key ${keyId(key)}`)
  }
  if (key === undefined) { problems.push('no public key to check signatures with'); return result(0, 0) }
  const kid = keyId(key)
  notes.push(`key id ${kid}`)
  if (manifest.key_id !== kid) problems.push(`manifest.json: key_id ${String(manifest.key_id)} is not the key used ${kid}`)

  // 3. Root statements: signature, and the chain links between consecutive ones.
  const statements = new Map<number, StatementLine>()
  let prev: StatementLine | undefined
  lines(bundle.get('checkpoints.ndjson')).forEach((text, i) => {
    const where = `checkpoints.ndjson line ${i + 1}`
    let st: unknown
    try { st = JSON.parse(text) } catch { problems.push(`${where}: not valid JSON`); return }
    if (!isStatementLine(st)) { problems.push(`${where}: not a root statement`); return }
    const { root_sig: sig, ...body } = st
    // Only the statement's own fields are signed: a stray field would otherwise ride along unnoticed.
    const clean = rootStatement(body)
    if (Object.keys(body).length !== Object.keys(clean).length) problems.push(`${where}: root statement ${st.seq} has unknown fields`)
    if (!verifyRootStatement(clean, sig, key)) problems.push(`${where}: root statement ${st.seq} signature does not verify with key ${kid}`)
    if (statements.has(st.seq)) problems.push(`${where}: root statement ${st.seq} appears twice`)
    if (prev !== undefined) {
      if (st.seq !== prev.seq + 1) problems.push(`${where}: chain gap: statement ${st.seq} follows ${prev.seq}`)
      else if (st.prev_statement !== statementHash(prev)) problems.push(`${where}: chain broken: statement ${st.seq} does not link to statement ${prev.seq}`)
    }
    statements.set(st.seq, st)
    prev = st
  })

  // 4. Proofs by event id.
  const proofs = new Map<string, { p: ProofLine, line: number }>()
  lines(bundle.get('proofs.ndjson')).forEach((text, i) => {
    const where = `proofs.ndjson line ${i + 1}`
    let p: unknown
    try { p = JSON.parse(text) } catch { problems.push(`${where}: not valid JSON`); return }
    if (!isProofLine(p)) { problems.push(`${where}: not a proof`); return }
    if (proofs.has(p.id)) { problems.push(`${where}: second proof for event ${p.id}`); return }
    proofs.set(p.id, { p, line: i + 1 })
    const st = statements.get(p.seq)
    if (st === undefined) { problems.push(`${where}: event ${p.id} refers to checkpoint ${p.seq}, which is not in checkpoints.ndjson`); return }
    if (p.size !== st.size) { problems.push(`${where}: event ${p.id} proof is for a tree of ${p.size}, checkpoint ${p.seq} has ${st.size}`); return }
    if (!verifyInclusion(eventLeaf(p.hash), p.leaf, p.size, p.proof.map(h => Buffer.from(h, 'hex')), Buffer.from(st.root, 'hex'))) {
      problems.push(`${where}: inclusion proof of event ${p.id} (hash ${p.hash}) does not lead to the signed root of checkpoint ${p.seq}`)
    }
  })

  // 5. Events: each one unchanged, proven, once.
  const seen = new Map<string, number>()
  let events = 0
  lines(bundle.get('events.ndjson')).forEach((text, i) => {
    const n = i + 1
    events++
    let e: unknown
    try { e = JSON.parse(text) } catch { problems.push(`events.ndjson line ${n}: not valid JSON (changed or truncated)`); return }
    const ev = isObj(e) && isObj(e.event) ? e.event : undefined
    const id = ev !== undefined && typeof ev.id === 'string' ? ev.id : undefined
    if (id === undefined) { problems.push(`events.ndjson line ${n}: not an audit event (no event.id)`); return }
    const first = seen.get(id)
    if (first !== undefined) { problems.push(`events.ndjson extra line ${n}: event ${id} appears again (first at line ${first})`); return }
    seen.set(id, n)
    const proof = proofs.get(id)
    if (proof === undefined) { problems.push(`events.ndjson extra line ${n}: event ${id} has no proof`); return }
    // eventHash reads only `event` and canonicalizes the rest: safe on any parsed object.
    const computed = eventHash(e as AuditEvent)
    if (computed !== proof.p.hash) problems.push(`events.ndjson line ${n}: event ${id} changed (hash ${computed}, sealed ${proof.p.hash})`)
    else if (ev?.hash !== proof.p.hash) problems.push(`events.ndjson line ${n}: event ${id} carries event.hash ${String(ev?.hash)}, sealed ${proof.p.hash}`)
  })
  for (const [id, { line }] of proofs) {
    if (!seen.has(id)) problems.push(`line missing: event ${id} listed in proofs.ndjson (line ${line}) but not in events.ndjson`)
  }
  if (manifest.counts.events !== events) problems.push(`manifest.json: counts.events ${String(manifest.counts.events)} but events.ndjson has ${events} lines`)
  return result(events, statements.size)
}

// ---- USTAR (POSIX.1-1988) writer and reader: regular files in one directory, nothing else. ----

function octal (n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

/** Writes `files` as a tar archive of regular files under `dir/`. Names must be plain file names. */
export function writeTar (dir: string, files: Bundle, mtime: Date): Buffer {
  const parts: Buffer[] = []
  for (const [name, data] of files) {
    const full = `${dir}/${name}`
    if (Buffer.byteLength(full) > 100 || name.includes('/')) throw new RangeError(`tar name too long or not flat: ${full}`)
    const h = Buffer.alloc(512)
    h.write(full, 0, 'utf8')
    h.write(octal(0o644, 8), 100, 'ascii')
    h.write(octal(0, 8), 108, 'ascii')
    h.write(octal(0, 8), 116, 'ascii')
    h.write(octal(data.length, 12), 124, 'ascii')
    h.write(octal(Math.floor(mtime.getTime() / 1000), 12), 136, 'ascii')
    h.write('        ', 148, 'ascii')
    h.write('0', 156, 'ascii')
    h.write('ustar\x0000', 257, 'ascii')
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

/** Reads a tar archive written by `writeTar` (or any USTAR of regular files in one directory). */
export function readTar (tar: Buffer): Bundle {
  const out: Bundle = new Map()
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512)
    if (h.every(b => b === 0)) break
    const field = (a: number, len: number): string => h.subarray(a, a + len).toString('utf8').replace(/\0.*$/s, '')
    let sum = 0
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i] as number
    if (parseInt(field(148, 8).trim(), 8) !== sum) throw new Error(`tar header at byte ${off}: bad checksum`)
    const prefix = field(345, 155)
    const name = (prefix === '' ? '' : prefix + '/') + field(0, 100)
    const size = parseInt(field(124, 12).trim(), 8)
    const type = field(156, 1)
    off += 512
    if (type === '5') continue
    if (type !== '0' && type !== '') throw new Error(`tar entry ${name}: not a regular file (type ${type})`)
    if (off + size > tar.length) throw new Error(`tar entry ${name}: truncated`)
    const base = name.slice(name.lastIndexOf('/') + 1)
    if (out.has(base)) throw new Error(`tar entry ${name}: duplicate file ${base}`)
    out.set(base, Buffer.from(tar.subarray(off, off + size)))
    off += size + ((512 - (size % 512)) % 512)
  }
  return out
}

export const RECIPIENT_README = `auditline evidence export
=========================

This bundle holds audit events exported for one case, and what you need to check, without access to
the systems they came from, that they are exactly the events the operator's indexer sealed.

Files
  manifest.json       case id, reason, requester, time, the filters used, counts, SHA-256 of every file
  events.ndjson       the events, one JSON object per line (authoritative)
  events.csv          the same events as a table (convenience view: a cell starting with = + - @ is
                      prefixed with ' so that spreadsheets do not run it)
  proofs.ndjson       per event: its hash, the checkpoint (seq) that sealed it, its leaf position, the tree
                      size and the RFC 6962 Merkle inclusion proof (sibling hashes, hex)
  checkpoints.ndjson  signed root statements: per checkpoint its seq, index, tree size, Merkle root, the
                      hash of the previous statement, key id, signing time, and an Ed25519 signature
                      (root_sig); every checkpoint from the first to the last one used, so that the chain
                      between them can be checked
  public-key.pem      the Ed25519 public key the statements are signed with

How to verify
  auditline verify-export <bundle.tar or directory> --public-key <key the operator published>
  Exit 0: all checks passed. Exit 1: each problem is printed with file, line and event id.
  Without --public-key the bundle's own public-key.pem is used: then compare its key id (printed) with the
  one the operator published through another channel.

What is checked
  - every file's SHA-256 against manifest.json, and no file added or missing;
  - every event's SHA-256 (canonical JSON, RFC 8785, without event.hash and event.ingested) against the
    hash its proof names;
  - every proof leads from that hash to the root of its checkpoint;
  - every root statement's signature, and that consecutive statements link to each other (prev_statement);
  - every event has exactly one proof and every proof has its event (no line added, removed or repeated).

What the proofs show, and what they do not
  - They show that each event, byte for byte as in events.ndjson (after canonicalization), was sealed by the
    operator's key in the checkpoint named, at the position named.
  - They do not show that the export is complete: events matching the filters that are not in the bundle
    (withheld, or not yet sealed) cannot be detected from the bundle alone.
  - They do not reveal other events' contents, ids or times: a proof holds only hashes of subtrees; a root
    statement holds only its index name, tree size, root and signing time. The statements between the
    first and the last checkpoint used do show how many events were sealed in between (and in which
    indices): that is the price of showing that no checkpoint was left out.
  - They do not prove the events are true, only that they have not changed since the indexer sealed them.
`
