import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { ERROR_SPECS, AuditError, isAuditError } from '../../../lib/errors.ts'

describe('errors', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')

  for (const code of Object.keys(ERROR_SPECS)) {
    it(`documents ${code} in docs/errors.md`, () => {
      assert.ok(doc.includes(`\`${code}\``), `${code} is missing from docs/errors.md`)
    })
  }

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/`(AUD_ERR_[A-Z_]+)`/g)].map(m => m[1])
    for (const code of documented) assert.ok(code !== undefined && code in ERROR_SPECS, `${String(code)} is documented but not defined`)
  })

  it('fills the message template and carries code, retriable and status', () => {
    const e = new AuditError('AUD_ERR_API_BAD_REQUEST', ['size', 'must be at most 500'])
    assert.equal(e.message, 'Invalid parameter size: must be at most 500')
    assert.equal(e.code, 'AUD_ERR_API_BAD_REQUEST')
    assert.equal(e.status, 400)
    assert.equal(e.retriable, false)
    assert.ok(isAuditError(e, 'AUD_ERR_API_BAD_REQUEST'))
    assert.ok(!isAuditError(e, 'AUD_ERR_API_FORBIDDEN'))
  })
})
