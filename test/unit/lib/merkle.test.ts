import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { leafHash, rootOf, inclusionProof, verifyInclusion, nodeHash } from '../../../lib/merkle.ts'

const leaves = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`event-${i}`)))

describe('RFC 6962 Merkle trees', () => {
  it('hashes the empty tree as SHA-256 of nothing and a one-leaf tree as its leaf hash', () => {
    assert.equal(rootOf([]).toString('hex'), createHash('sha256').digest('hex'))
    const l = leafHash(Buffer.from('x'))
    assert.ok(rootOf([l]).equals(l))
  })

  it('splits at the largest power of two below n (3 leaves = node(node(a,b), c))', () => {
    const [a, b, c] = leaves(3) as [Buffer, Buffer, Buffer]
    assert.ok(rootOf([a, b, c]).equals(nodeHash(nodeHash(a, b), c)))
  })

  it('proves every leaf of every tree size up to 33, and refuses a proof for a changed leaf, index or root', () => {
    for (let n = 1; n <= 33; n++) {
      const ls = leaves(n)
      const root = rootOf(ls)
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(ls, m)
        assert.ok(verifyInclusion(ls[m] as Buffer, m, n, proof, root), `leaf ${m} of ${n}`)
        assert.ok(!verifyInclusion(leafHash(Buffer.from('forged')), m, n, proof, root))
        if (n > 1) assert.ok(!verifyInclusion(ls[m] as Buffer, (m + 1) % n, n, proof, root))
        assert.ok(!verifyInclusion(ls[m] as Buffer, m, n, proof, leafHash(Buffer.from('other root'))))
      }
    }
  })

  it('distinguishes a leaf from an inner node (second-preimage resistance by domain separation)', () => {
    const [a, b] = leaves(2) as [Buffer, Buffer]
    assert.ok(!leafHash(Buffer.concat([a, b])).equals(nodeHash(a, b)))
  })
})
