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
  key_id: string
  signed_at: string
  /** Base64 Ed25519 signature over the canonical form without `sig`. */
  sig: string
}

export type UnsignedCheckpoint = Omit<SealCheckpoint, 'sig' | 'key_id'>

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
  const withKey = { ...cp, key_id: keyId(createPublicKey(privateKey)) }
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
