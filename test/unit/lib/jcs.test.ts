import assert from 'node:assert/strict'
import { canonicalize } from '../../../lib/jcs.ts'

describe('RFC 8785 canonicalization', () => {
  it('sorts keys by UTF-16 code units and drops whitespace (RFC 8785 §3.2.3 example)', () => {
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', דּ: 'Hebrew Letter Dalet With Dagesh', 1: 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', ö: 'Latin Small Letter O With Diaeresis' }
    assert.equal(canonicalize(input),
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}')
  })

  it('serializes numbers as ECMAScript does (RFC 8785 §3.2.2.3)', () => {
    // 333333333.33333329 is the RFC's input; written here as the double it denotes.
    assert.equal(canonicalize([333333333.3333333, 1E30, 4.50, 2e-3, 0.000000000000000000000000001, -0]), '[333333333.3333333,1e+30,4.5,0.002,1e-27,0]')
  })

  it('refuses values JSON cannot hold', () => {
    assert.throws(() => canonicalize(Number.NaN))
    assert.throws(() => canonicalize({ f: () => 1 }))
  })
})
