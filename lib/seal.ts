/**
 * Signed seal checkpoints: what the indexer indexed, sealed into an RFC 6962 Merkle tree per index and time
 * slice, signed with Ed25519 (node:crypto), each checkpoint carrying the hash of the previous one (a chain per
 * deployment). The key id is the SHA-256 fingerprint of the public key (SPKI DER), so a verifier holding only
 * the public key knows which checkpoints it can check.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { canonicalize } from './jcs.ts'
import { leafHash, rootOf } from './merkle.ts'

export interface SealCheckpoint {
  v: 1
  /** Position in the chain, from 0. */
  seq: number
  /** Index the sealed events are in. */
  index: string
  /** `@timestamp` range of the sealed events (inclusive). */
  from: string
  to: string
  /** Leaves in tree order: the sealed events' ids (contents are never in a checkpoint). */
  ids: string[]
  /**
   * `event.hash` (hex) of each id, same order: the leaf data. With them a verifier names the event that
   * changed; a root alone says only that something in the tree did.
   */
  hashes: string[]
  /** `@timestamp` of each id, same order: lets a verifier restrict itself to a time range, leaf by leaf. */
  timestamps: string[]
  size: number
  /** Hex Merkle root over leafHash(event.hash bytes) in `ids` order. */
  root: string
  /** Hex SHA-256 of the previous checkpoint's canonical form (with its signature); null for the first. */
  prev: string | null
  /**
   * Hex `statementHash` of the previous checkpoint's root statement; null for the first. Lets an evidence
   * export show the chain between the root statements it ships without shipping whole checkpoints.
   * Absent in checkpoints sealed before root statements existed.
   */
  prev_statement?: string | null
  key_id: string
  signed_at: string
  /**
   * Base64 Ed25519 signature over the canonical root statement (`rootStatement`): lets an evidence export
   * prove inclusion against the signed root without disclosing the other events' ids, hashes and timestamps.
   * Absent in checkpoints sealed before root statements existed.
   */
  root_sig?: string
  /** Base64 Ed25519 signature over the canonical form without `sig` (`root_sig` included). */
  sig: string
}

export type UnsignedCheckpoint = Omit<SealCheckpoint, 'sig' | 'key_id' | 'root_sig'>

/**
 * What an evidence export ships instead of a checkpoint: the signed root of one tree and its place in the
 * chain, without the ids, hashes and timestamps of the events in it (selective disclosure).
 */
export interface RootStatement {
  v: 1
  type: 'auditline.root'
  seq: number
  index: string
  size: number
  root: string
  prev_statement: string | null
  key_id: string
  signed_at: string
}

/**
 * The root statement of a checkpoint (derivable from any checkpoint; signed only if it has `root_sig`). No
 * `from`/`to`: those are the timestamps of the tree's first and last events, which may not be exported ones.
 */
export function rootStatement (cp: Pick<SealCheckpoint, 'seq' | 'index' | 'size' | 'root' | 'prev_statement' | 'key_id' | 'signed_at'>): RootStatement {
  return { v: 1, type: 'auditline.root', seq: cp.seq, index: cp.index, size: cp.size, root: cp.root, prev_statement: cp.prev_statement ?? null, key_id: cp.key_id, signed_at: cp.signed_at }
}

/** Hex SHA-256 of a root statement's canonical form with its `root_sig` (if any): what the next one links to. */
export function statementHash (st: RootStatement & { root_sig?: string | undefined }): string {
  const { root_sig: rs, ...rest } = st
  return createHash('sha256').update(canonicalize(rs === undefined ? rest : { ...rest, root_sig: rs })).digest('hex')
}

/** The statement hash of a checkpoint's root statement (the `prev_statement` of the next checkpoint). */
export function checkpointStatementHash (cp: SealCheckpoint): string {
  return statementHash({ ...rootStatement(cp), root_sig: cp.root_sig })
}

export function verifyRootStatement (st: RootStatement, rootSig: string, publicKey: KeyObject): boolean {
  if (st.key_id !== keyId(publicKey)) return false
  return verify(null, Buffer.from(canonicalize(st)), publicKey, Buffer.from(rootSig, 'base64'))
}

/** The leaf of an event: its `event.hash` (hex) as bytes. */
export function eventLeaf (eventHashHex: string): Buffer {
  return leafHash(Buffer.from(eventHashHex, 'hex'))
}

export function merkleRoot (eventHashes: readonly string[]): string {
  return rootOf(eventHashes.map(eventLeaf)).toString('hex')
}

export function keyId (publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')
}

export function checkpointHash (cp: SealCheckpoint): string {
  return createHash('sha256').update(canonicalize(cp)).digest('hex')
}

function signedPart (cp: Omit<SealCheckpoint, 'sig'>): Buffer {
  return Buffer.from(canonicalize(cp))
}

export function signCheckpoint (cp: UnsignedCheckpoint, privateKey: KeyObject): SealCheckpoint {
  const keyed = { ...cp, key_id: keyId(createPublicKey(privateKey)) }
  // The root statement is signed first; the checkpoint signature then covers `root_sig` too.
  const withKey = { ...keyed, root_sig: sign(null, Buffer.from(canonicalize(rootStatement(keyed))), privateKey).toString('base64') }
  return { ...withKey, sig: sign(null, signedPart(withKey), privateKey).toString('base64') }
}

export function verifyCheckpointSignature (cp: SealCheckpoint, publicKey: KeyObject): boolean {
  const { sig, ...rest } = cp
  if (rest.key_id !== keyId(publicKey)) return false
  return verify(null, signedPart(rest), publicKey, Buffer.from(sig, 'base64'))
}

export function loadPrivateKey (pem: string): KeyObject {
  const k = createPrivateKey(pem)
  if (k.asymmetricKeyType !== 'ed25519') throw new Error(`seal key must be Ed25519, got ${String(k.asymmetricKeyType)}`)
  return k
}

export function generateSealKey (): { privatePem: string, publicPem: string, keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyId(publicKey)
  }
}
