import assert from 'node:assert/strict'
import { BlockList } from 'node:net'
import fc from 'fast-check'
import { cidrRange, ipBytes } from '../../../../indexer/sqlite/ip.ts'

const hex = (b: Buffer | undefined): string | undefined => b?.toString('hex')
const inRange = (ip: string, cidr: string): boolean => {
  const r = cidrRange(cidr)
  const b = ipBytes(ip)
  assert.ok(r !== undefined && b !== undefined, `${ip} in ${cidr}`)
  return Buffer.compare(r.lo, b) <= 0 && Buffer.compare(b, r.hi) <= 0
}

describe('indexer/sqlite: IP addresses as 16 bytes', () => {
  it('stores IPv4 as IPv4-mapped IPv6, so both spellings are one address', () => {
    assert.equal(hex(ipBytes('198.51.100.7')), '00000000000000000000ffffc6336407')
    assert.equal(hex(ipBytes('::ffff:198.51.100.7')), hex(ipBytes('198.51.100.7')))
    assert.equal(hex(ipBytes('::ffff:c633:6407')), hex(ipBytes('198.51.100.7')))
  })

  it('stores IPv6 as its 16 bytes, whatever the spelling', () => {
    assert.equal(hex(ipBytes('2001:db8::42')), '20010db8000000000000000000000042')
    assert.equal(hex(ipBytes('2001:0DB8:0:0:0:0:0:42')), '20010db8000000000000000000000042')
    assert.equal(hex(ipBytes('::')), '0'.repeat(32))
    assert.equal(hex(ipBytes('::1')), '0'.repeat(31) + '1')
    assert.equal(hex(ipBytes('fe80::')), 'fe80' + '0'.repeat(28))
    assert.equal(hex(ipBytes('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008')
    assert.equal(hex(ipBytes('64:ff9b::192.0.2.33')), '0064ff9b0000000000000000c0000221')
    assert.equal(hex(ipBytes('fe80::1%eth0')), hex(ipBytes('fe80::1')))
  })

  it('gives nothing for what is not an address', () => {
    for (const bad of ['', 'localhost', '256.1.1.1', '01.2.3.4', '1.2.3', '2001:db8::1::2', '12345::', '1.2.3.4/24', 'gggg::1', ' 1.2.3.4']) {
      assert.equal(ipBytes(bad), undefined, bad)
    }
  })

  it('turns an IPv4 CIDR block into its range in the ::ffff:0:0/96 space', () => {
    const r = cidrRange('198.51.100.0/24')
    assert.equal(hex(r?.lo), '00000000000000000000ffffc6336400')
    assert.equal(hex(r?.hi), '00000000000000000000ffffc63364ff')
    assert.ok(inRange('198.51.100.0', '198.51.100.0/24'))
    assert.ok(inRange('198.51.100.255', '198.51.100.0/24'))
    assert.ok(inRange('::ffff:198.51.100.9', '198.51.100.0/24'))
    assert.ok(!inRange('198.51.101.0', '198.51.100.0/24'))
    assert.ok(!inRange('198.51.99.255', '198.51.100.0/24'))
    assert.ok(!inRange('2001:db8::1', '198.51.100.0/24'))
    assert.ok(inRange('203.0.113.9', '0.0.0.0/0'))
    assert.ok(!inRange('2001:db8::1', '0.0.0.0/0'))
  })

  it('turns an IPv6 CIDR block into its range, IPv4-mapped blocks included', () => {
    assert.ok(inRange('2001:db8:ffff::1', '2001:db8::/32'))
    assert.ok(!inRange('2001:db9::', '2001:db8::/32'))
    assert.ok(!inRange('198.51.100.7', '2001:db8::/32'))
    assert.ok(inRange('198.51.100.7', '::ffff:0:0/96'))
    assert.ok(inRange('2001:db8::1', '::/0') && inRange('10.0.0.1', '::/0'))
    const r = cidrRange('2001:db8:abcd:12::/63')
    assert.equal(hex(r?.lo), '20010db8abcd00120000000000000000')
    assert.equal(hex(r?.hi), '20010db8abcd0013ffffffffffffffff')
  })

  it('treats a bare address as a /32 or /128 and ignores host bits after the prefix', () => {
    assert.deepEqual(cidrRange('198.51.100.7'), { lo: ipBytes('198.51.100.7'), hi: ipBytes('198.51.100.7') })
    assert.deepEqual(cidrRange('2001:db8::42'), { lo: ipBytes('2001:db8::42'), hi: ipBytes('2001:db8::42') })
    assert.deepEqual(cidrRange('10.1.2.3/8'), cidrRange('10.0.0.0/8'))
    assert.deepEqual(cidrRange('198.51.100.7/32'), cidrRange('198.51.100.7'))
  })

  it('agrees with node:net BlockList on random blocks and addresses near them, in both families', () => {
    const check = (type: 'ipv4' | 'ipv6', parts: number, bits: number, text: (p: number[]) => string): void => {
      const part = fc.nat(bits === 32 ? 255 : 0xffff)
      const arr = fc.array(part, { minLength: parts, maxLength: parts })
      // The address shares the block's first `keep` parts, so that it falls inside about as often as not.
      fc.assert(fc.property(arr, arr, fc.nat(parts), fc.nat(bits), (net, other, keep, prefix) => {
        const addr = text(net.map((x, i) => i < keep ? x : other[i] as number))
        const list = new BlockList()
        list.addSubnet(text(net), prefix, type)
        const r = cidrRange(`${text(net)}/${prefix}`) as { lo: Buffer, hi: Buffer }
        const b = ipBytes(addr) as Buffer
        assert.equal(Buffer.compare(r.lo, b) <= 0 && Buffer.compare(b, r.hi) <= 0, list.check(addr, type), `${addr} in ${text(net)}/${prefix}`)
      }), { numRuns: 3000 })
    }
    check('ipv4', 4, 32, p => p.join('.'))
    check('ipv6', 8, 128, p => p.map(x => x.toString(16)).join(':'))
  })

  it('gives nothing for a malformed block', () => {
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0.0/ 8', 'example.org/24', '/24']) {
      assert.equal(cidrRange(bad), undefined, bad)
    }
  })
})
