/**
 * Merkle trees as RFC 6962 / RFC 9162 define them (Certificate Transparency): leaf hash
 * SHA-256(0x00 || data), node hash SHA-256(0x01 || left || right), the tree split at the largest power of
 * two below n. Inclusion proofs reveal only sibling hashes, never other leaves' contents (selective
 * disclosure for evidence exports).
 */
import { createHash } from 'node:crypto'

export function leafHash (data: Buffer): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(data).digest()
}

export function nodeHash (left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest()
}

/** Largest power of two strictly less than n (n ≥ 2). */
function split (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH(D[n]) over already-hashed leaves. The empty tree's hash is SHA-256 of nothing. */
export function rootOf (leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest()
  return mth(leaves, 0, leaves.length)
}

function mth (leaves: readonly Buffer[], lo: number, hi: number): Buffer {
  const n = hi - lo
  if (n === 1) return leaves[lo] as Buffer
  const k = split(n)
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi))
}

/** PATH(m, D[n]) of RFC 6962 §2.1.1: the sibling hashes from leaf m up to the root. */
export function inclusionProof (leaves: readonly Buffer[], m: number): Buffer[] {
  if (m < 0 || m >= leaves.length) throw new RangeError(`leaf ${m} outside a tree of ${leaves.length}`)
  return path(leaves, m, 0, leaves.length)
}

function path (leaves: readonly Buffer[], m: number, lo: number, hi: number): Buffer[] {
  const n = hi - lo
  if (n === 1) return []
  const k = split(n)
  return m < k
    ? [...path(leaves, m, lo, lo + k), mth(leaves, lo + k, hi)]
    : [...path(leaves, m - k, lo + k, hi), mth(leaves, lo, lo + k)]
}

/** RFC 9162 §2.1.3.2: verifies that `leaf` (already hashed) is at `index` of a tree of `size` with `root`. */
export function verifyInclusion (leaf: Buffer, index: number, size: number, proof: readonly Buffer[], root: Buffer): boolean {
  if (index >= size || index < 0) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (sn === 0) return false
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) { fn >>= 1; sn >>= 1 }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1
    sn >>= 1
  }
  return sn === 0 && r.equals(root)
}
