import assert from 'node:assert/strict'
import { RecentIds } from '../../../anonymizer/stats/dedupe.ts'

describe('RecentIds (statistics: records delivered twice)', () => {
  it('recognises an id seen among the last `capacity` ids and forgets the oldest beyond', () => {
    const r = new RecentIds(3)
    assert.deepEqual(['a', 'b', 'c'].map(id => r.seen(id)), [false, false, false])
    assert.equal(r.seen('b'), true)
    assert.equal(r.seen('d'), false) // forgets a
    assert.equal(r.size, 3)
    assert.equal(r.seen('a'), false, 'a copy further away than the window counts again')
    assert.equal(r.seen('b'), false, 'b, then the oldest, was forgotten when a came back')
    assert.equal(r.seen('d'), true)
  })

  it('remembers nothing with capacity 0', () => {
    const r = new RecentIds(0)
    assert.equal(r.seen('a'), false)
    assert.equal(r.seen('a'), false)
    assert.equal(r.size, 0)
  })
})
