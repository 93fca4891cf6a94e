import assert from 'node:assert/strict'
import { isZoneSetting, resolvePgZone, wallTimeToIso } from '../../../ingest/common/zoned-time.ts'

const w = (s: string): { year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number } => {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s) as RegExpExecArray
  return { year: +(m[1] as string), month: +(m[2] as string), day: +(m[3] as string), hour: +(m[4] as string), minute: +(m[5] as string), second: +(m[6] as string), ms: 0 }
}

describe('wall-clock times to instants', () => {
  it('reads UTC, fixed offsets and IANA zones, winter and summer', () => {
    assert.equal(wallTimeToIso(w('2026-11-29 07:05:41'), 'UTC'), '2026-11-29T07:05:41.000Z')
    assert.equal(wallTimeToIso(w('2026-11-29 08:05:41'), '+01:00'), '2026-11-29T07:05:41.000Z')
    assert.equal(wallTimeToIso(w('2026-11-29 02:05:41'), '-05:00'), '2026-11-29T07:05:41.000Z')
    assert.equal(wallTimeToIso(w('2026-11-29 08:05:41'), 'Europe/Berlin'), '2026-11-29T07:05:41.000Z')
    assert.equal(wallTimeToIso(w('2026-07-01 09:00:00'), 'Europe/Berlin'), '2026-07-01T07:00:00.000Z')
  })

  it('resolves the autumn fold to the earlier instant and a spring gap with the offset before it', () => {
    // 2026-10-25 02:30 happens twice in Berlin (CEST, then CET).
    assert.equal(wallTimeToIso(w('2026-10-25 02:30:00'), 'Europe/Berlin'), '2026-10-25T00:30:00.000Z')
    // 2026-03-29 02:30 does not exist in Berlin.
    assert.equal(wallTimeToIso(w('2026-03-29 02:30:00'), 'Europe/Berlin'), '2026-03-29T01:30:00.000Z')
  })

  it('refuses impossible dates and unknown zones', () => {
    assert.equal(wallTimeToIso(w('2026-13-01 00:00:00'), 'UTC'), undefined)
    assert.equal(isZoneSetting('Europe/Berlin'), true)
    assert.equal(isZoneSetting('local'), true)
    assert.equal(isZoneSetting('Mars/Olympus'), false)
  })

  it('prefers a numeric PostgreSQL zone over the configured one', () => {
    assert.equal(resolvePgZone(w('2026-11-29 10:00:00'), '+03', 'Europe/Berlin'), '2026-11-29T07:00:00.000Z')
    assert.equal(resolvePgZone(w('2026-11-29 08:00:00'), 'CET', 'Europe/Berlin'), '2026-11-29T07:00:00.000Z')
  })
})
