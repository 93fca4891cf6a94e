import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import fc from 'fast-check'
import { rewriteIps } from '../../../anonymizer/anonymize-ip/scan.ts'
import { EpochKey } from '../../../anonymizer/anonymize-ip/epoch-key.ts'
import { EpochMapper } from '../../../anonymizer/anonymize-ip/mapper.ts'

describe('IP rewriting properties (fast-check)', () => {
  const mapper = new EpochMapper(new EpochKey(7, 86_400_000))

  it('turns every IPv4 into a valid IPv4 other than itself', () => {
    fc.assert(fc.property(fc.ipV4(), ip => {
      const out = rewriteIps(ip, mapper)
      return isIP(out) === 4 && out !== ip
    }), { numRuns: 5000 })
  })

  it('turns every IPv6 (any notation fast-check knows) into a valid IPv6', () => {
    fc.assert(fc.property(fc.ipV6(), ip => {
      const out = rewriteIps(ip, mapper)
      return isIP(out) === 6 && out.toLowerCase() !== ip.toLowerCase()
    }), { numRuns: 5000 })
  })

  it('maps an address the same way every time within an epoch, wherever it stands in the text', () => {
    fc.assert(fc.property(fc.ipV4(), fc.constantFrom('', 'GET /x?ip=', 'host '), (ip, prefix) => {
      return rewriteIps(prefix + ip, mapper) === prefix + rewriteIps(ip, mapper)
    }), { numRuns: 2000 })
  })

  it('does not collide beyond chance: 20,000 distinct IPv4 give (almost) 20,000 distinct outputs', () => {
    const inputs = new Set<string>()
    fc.assert(fc.property(fc.ipV4(), ip => { inputs.add(ip); return true }), { numRuns: 20_000 })
    const outputs = new Set([...inputs].map(ip => rewriteIps(ip, mapper)))
    // Birthday bound for n=20,000 in 2^32: expected collisions n²/2^33 ≈ 0.05.
    assert.ok(inputs.size - outputs.size <= 2, `${inputs.size - outputs.size} collisions`)
  })
})
