import assert from 'node:assert/strict'
import fc from 'fast-check'
import { rewriteIps, type IpMapper } from '../../../anonymizer/anonymize-ip/scan.ts'
import { EpochKey } from '../../../anonymizer/anonymize-ip/epoch-key.ts'
import { EpochMapper } from '../../../anonymizer/anonymize-ip/mapper.ts'
import { anonymizeText, DEFAULT_SCRUB_PARAMS } from '../../../anonymizer/anonymize-ip/text.ts'

/** Text rich in address characters: addresses of every notation, glued to separators and noise. */
const token = fc.oneof(
  fc.ipV4(), fc.ipV6(), fc.ipV4().map(s => s.replaceAll('.', '-')), fc.ipV6().map(s => s.replaceAll(':', '-')),
  fc.ipV6().map(s => `[${s}]:443`), fc.ipV4().map(s => `::ffff:${s}`), fc.ipV6().map(s => s.replaceAll(':', '%3A')),
  fc.stringMatching(/^[0-9a-fA-F:.\-_%]{1,12}$/),
  fc.constantFrom(' ', '.', ':', '-', '_', '/', '?', '&', ';', '=', '"', '@', '%40', 'email=', 'ip=', 'x', '2026:00:00:00', 'é')
)
const texts = fc.array(token, { maxLength: 10 }).map(a => a.join(''))

describe('anonymizer fast paths', () => {
  it('give what the plain byte mapping gives (dotted-text cache, IPv6 run memo, signature skip)', () => {
    const m = new EpochMapper(new EpochKey(11, 86_400_000), 64) // small: the caches fill and clear often
    const plain: IpMapper = { v4: a => m.v4(a), v6: a => m.v6(a) }
    fc.assert(fc.property(texts, s => rewriteIps(s, m) === rewriteIps(s, plain)), { numRuns: 3000 })
  })

  it('serve nothing once cleared and the key destroyed', () => {
    const key = new EpochKey(12, 86_400_000)
    const m = new EpochMapper(key)
    rewriteIps('192.0.2.1 and 2001:db8::1 and 2001-db8--2', m)
    m.clear()
    key.destroy()
    for (const s of ['192.0.2.1', '2001:db8::1', '2001-db8--2']) assert.throws(() => rewriteIps(s, m), /destroyed/)
  })

  it('give cached visitor ids equal to the keyed hash itself, distinct per input, and none once cleared and the key destroyed', () => {
    const key = new EpochKey(14, 86_400_000)
    const m = new EpochMapper(key, 8) // small: the cache fills and clears
    const inputs = Array.from({ length: 20 }, (_, i) => [`198.51.100.${i % 7}`, `UA ${i % 3}`, 'shop.example'] as const)
    const first = inputs.map(p => m.digest(...p).toString('hex'))
    const fresh = new EpochMapper(key) // same key, empty cache: what the HMAC gives
    assert.deepEqual(inputs.map(p => m.digest(...p).toString('hex')), first)
    assert.deepEqual(inputs.map(p => fresh.digest(...p).toString('hex')), first)
    assert.equal(new Set(first).size, 20, 'one id per distinct (address, user agent, site): i % 7 and i % 3 repeat together only after 21')
    m.clear()
    key.destroy()
    assert.throws(() => m.digest('198.51.100.1', 'UA 1', 'shop.example'), /destroyed/)
  })

  it('still scrub a listed parameter whose name only lower-cases to the listed one (Kelvin sign K)', () => {
    const m = new EpochMapper(new EpochKey(13, 86_400_000))
    const opts = { queryParams: new Set(DEFAULT_SCRUB_PARAMS) }
    assert.equal(anonymizeText('/x?\u212Aey=s3cret&a=b', m, opts), '/x?\u212Aey=REDACTED&a=b')
    assert.equal(anonymizeText('/x?lang=de&page=2', m, opts), '/x?lang=de&page=2')
    assert.equal(anonymizeText('/x?%65mail=a', m, opts), '/x?%65mail=REDACTED')
  })
})
