import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import { rewriteIps, type IpMapper } from '../../../anonymizer/anonymize-ip/scan.ts'
import { EpochKey } from '../../../anonymizer/anonymize-ip/epoch-key.ts'
import { EpochMapper } from '../../../anonymizer/anonymize-ip/mapper.ts'
import { anonymizeText, DEFAULT_SCRUB_PARAMS } from '../../../anonymizer/anonymize-ip/text.ts'

/** Maps every IPv4 to 10.9.8.7 and every IPv6 to 2001:db8:ffff::7, so the expected text is obvious. */
const fixed: IpMapper = {
  v4: () => new Uint8Array([10, 9, 8, 7]),
  v6: () => new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
}

const cases: Array<[string, string, string]> = [
  ['plain IPv4', '203.0.113.9 - - [28/Nov/2026:03:49:07 +0000]', '10.9.8.7 - - [28/Nov/2026:03:49:07 +0000]'],
  ['IPv4 with a port', 'upstream 198.51.100.7:8080 said', 'upstream 10.9.8.7:8080 said'],
  ['X-Forwarded-For chain', '198.51.100.7, 2001:db8::42, 192.0.2.1', '10.9.8.7, 2001:db8:ffff::7, 10.9.8.7'],
  ['IPv4 in a URL path and query', '/admin/ban/192.0.2.55?src=192.0.2.56&x=1', '/admin/ban/10.9.8.7?src=10.9.8.7&x=1'],
  ['reverse-DNS name with dashes', 'host 192-0-2-1.dsl.example.net', 'host 10-9-8-7.dsl.example.net'],
  ['reverse-DNS name with a prefix', 'ip-10-1-2-3.ec2.internal and c-73-22-1-9.hsd1.ca.comcast.net', 'ip-10-9-8-7.ec2.internal and c-10-9-8-7.hsd1.ca.comcast.net'],
  ['reverse-DNS name with underscores', 'dyn_198_51_100_7.example.org', 'dyn_10_9_8_7.example.org'],
  ['in-addr.arpa name', '7.100.51.198.in-addr.arpa', '10.9.8.7.in-addr.arpa'],
  ['compressed IPv6', 'from 2001:db8::1 port', 'from 2001:db8:ffff::7 port'],
  ['full IPv6', '2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8:ffff::7'],
  ['loopback ::1', 'client ::1 connected', 'client 2001:db8:ffff::7 connected'],
  ['bracketed IPv6 with port', 'http://[2001:db8::bad:cafe]:8443/x', 'http://[2001:db8:ffff::7]:8443/x'],
  ['IPv6 with a zone', 'fe80::1ff:fe23:4567:890a%eth0 said', '2001:db8:ffff::7%eth0 said'],
  ['IPv4-mapped IPv6 keeps its form and maps like the IPv4', '::ffff:192.0.2.128 and 192.0.2.128', '::ffff:10.9.8.7 and 10.9.8.7'],
  ['IPv6 with an embedded IPv4 tail', '64:ff9b::192.0.2.33', '2001:db8:ffff::7'],
  ['ipv6-literal name', '2001-db8--1.ipv6-literal.net', '2001-db8-ffff--7.ipv6-literal.net'],
  ['address at the start and end of the text', '192.0.2.1', '10.9.8.7'],
  ['IPv6 at the end of a sentence', 'came from 2001:db8::5.', 'came from 2001:db8:ffff::7.'],
  ['remote user that is an address', 'user=198.51.100.200', 'user=10.9.8.7'],
  ['IPv6 without any decimal digit', 'from abcd::ef', 'from 2001:db8:ffff::7']
]

const untouched: Array<[string, string]> = [
  ['times', '[28/Nov/2026:03:49:07 +0000] 2026-11-28T03:49:07Z'],
  ['browser versions', 'Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0 Chrome/120.0.6099.109'],
  ['a UUID', '550e8400-e29b-41d4-a716-446655440000'],
  ['a MAC-like token', 'de:ad:be:ef'],
  ['numbers that are not octets', 'value 300.1.2.3 and 1.2.3'],
  ['text without digits', 'GET /index.html HTTP/1.1']
]

describe('rewriteIps', () => {
  for (const [what, input, expected] of cases) {
    it(`rewrites ${what}`, () => { assert.equal(rewriteIps(input, fixed), expected) })
  }
  for (const [what, input] of untouched) {
    it(`leaves ${what} alone`, () => { assert.equal(rewriteIps(input, fixed), input) })
  }

  it('maps consistently within an epoch and to unrelated values across epochs, family preserved', () => {
    const a = new EpochMapper(new EpochKey(1, 86_400_000))
    const b = new EpochMapper(new EpochKey(2, 86_400_000))
    const x1 = rewriteIps('198.51.100.7', a)
    assert.equal(rewriteIps('198.51.100.7', a), x1)
    assert.equal(isIP(x1), 4)
    assert.notEqual(x1, '198.51.100.7')
    assert.notEqual(rewriteIps('198.51.100.7', b), x1)
    const y1 = rewriteIps('2001:db8::1', a)
    assert.equal(isIP(y1), 6)
    // Different spellings of one address map to the same output.
    assert.equal(rewriteIps('2001:0db8:0:0:0:0:0:1', a), y1)
  })

  it('refuses to use an epoch key after it was destroyed', () => {
    const key = new EpochKey(3, 86_400_000)
    const m = new EpochMapper(key)
    key.destroy()
    assert.throws(() => rewriteIps('192.0.2.1', m), /destroyed/)
  })

  it('never shows the key through inspect or JSON', () => {
    const key = new EpochKey(4, 86_400_000)
    const hex = key.bytes.toString('hex')
    assert.ok(!JSON.stringify({ key }).includes(hex))
    assert.ok(!String(key).includes(hex))
  })
})

describe('anonymizeText', () => {
  const opts = { queryParams: new Set(DEFAULT_SCRUB_PARAMS) }
  it('rewrites percent-escaped addresses in URLs', () => {
    assert.equal(anonymizeText('/go?to=2001%3Adb8%3A%3A1&via=192%2E0%2E2%2E1', fixed, opts), '/go?to=2001:db8:ffff::7&via=10.9.8.7')
  })
  it('scrubs listed query parameters, case-insensitively, and keeps the others', () => {
    assert.equal(anonymizeText('/login?Email=anna&lang=de&token=abc123&page=2', fixed, opts), '/login?Email=REDACTED&lang=de&token=REDACTED&page=2')
  })
  it('scrubs e-mail addresses anywhere, also percent-encoded', () => {
    assert.equal(anonymizeText('"https://ref.example/?q=anna.k%40example.org" "mailto:bob@example.com"', fixed, opts), '"https://ref.example/?q=REDACTED" "mailto:REDACTED"')
  })
})
