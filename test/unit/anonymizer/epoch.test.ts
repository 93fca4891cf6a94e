import assert from 'node:assert/strict'
import { Anonymizer } from '../../../anonymizer/run.ts'
import { rewriteIps } from '../../../anonymizer/anonymize-ip/scan.ts'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 10, 28, 12) // noon of epoch 20420

describe('epoch keys (injected clock)', () => {
  it('holds no key of an epoch after the epoch and its grace ended, and maps the same IP differently in the next epoch', () => {
    const anon = new Anonymizer({ epochMs: DAY, graceMs: 15 * 60_000, scrubQueryParams: [] })
    const day1 = anon.mapperFor(T0, T0)
    assert.ok(day1 !== undefined)
    const epoch1 = day1.mapper.epoch
    const a1 = rewriteIps('203.0.113.50', day1.mapper)
    assert.equal(rewriteIps('203.0.113.50', day1.mapper), a1, 'consistent within the epoch')

    // Just after midnight, within the grace: a late record of day 1 still maps as before.
    const afterMidnight = T0 + 12 * 3_600_000 + 60_000
    const late = anon.mapperFor(T0 + 3_600_000, afterMidnight)
    assert.equal(late?.mapper.epoch, epoch1)
    assert.equal(rewriteIps('203.0.113.50', late.mapper), a1)
    const day2 = anon.mapperFor(afterMidnight, afterMidnight)
    assert.ok(day2 !== undefined && day2.mapper.epoch === epoch1 + 1)
    assert.deepEqual(anon.ring.liveEpochs.sort(), [epoch1, epoch1 + 1])

    // After the grace: day 1's key is destroyed and never comes back.
    const afterGrace = T0 + 12 * 3_600_000 + 16 * 60_000
    assert.equal(anon.mapperFor(T0 + 3_600_000, afterGrace), undefined, 'a day-1 record is refused after the grace')
    assert.deepEqual(anon.ring.liveEpochs, [epoch1 + 1], 'the process holds no key of day 1')
    assert.throws(() => rewriteIps('203.0.113.50', day1.mapper), /destroyed/, 'the old mapper cannot compute anything')
    assert.notEqual(rewriteIps('203.0.113.50', day2.mapper), a1, 'the next epoch maps the same IP to another value')
  })

  it('destroys every key on shutdown', () => {
    const anon = new Anonymizer({ epochMs: DAY, graceMs: 0, scrubQueryParams: [] })
    const m = anon.mapperFor(T0, T0)
    anon.destroy()
    assert.deepEqual(anon.ring.liveEpochs, [])
    assert.throws(() => rewriteIps('192.0.2.1', m?.mapper ?? { v4: () => { throw new Error('destroyed') }, v6: () => { throw new Error('destroyed') } }), /destroyed/)
  })
})
