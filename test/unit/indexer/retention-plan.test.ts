import assert from 'node:assert/strict'
import { planRetention, parseDailyIndex } from '../../../indexer/retention/plan.ts'
import { validate } from '../../../indexer/retention/run.ts'
import { periodsOf } from '../../../indexer/retention/config.ts'
import { isAuditError } from '../../../lib/errors.ts'

const DAY = 86_400_000
const periods = { ssh: 90, ftp: 90, db: 180, panel: 365, api: 730, stats: 400 }

describe('retention: planner', () => {
  it('keeps an index until its whole day is older than the period, and deletes it from that instant on', () => {
    // The day 2026-01-10 ends at 2026-01-11T00:00Z; its newest possible event is older than 90 days from +90 d on.
    const due = Date.parse('2026-01-11T00:00:00Z') + 90 * DAY
    const before = planRetention(['auditline-ssh-2026.01.10'], periods, 'auditline', new Date(due - 1))
    assert.deepEqual(before.expired, [])
    assert.deepEqual(before.kept, [{ index: 'auditline-ssh-2026.01.10', reason: 'not_expired', eventClass: 'ssh', expiresAt: new Date(due).toISOString() }])
    const at = planRetention(['auditline-ssh-2026.01.10'], periods, 'auditline', new Date(due))
    assert.deepEqual(at.expired, [{
      index: 'auditline-ssh-2026.01.10',
      eventClass: 'ssh',
      day: '2026-01-10',
      dayStartMs: Date.parse('2026-01-10T00:00:00Z'),
      periodDays: 90,
      expiredAt: '2026-04-11T00:00:00.000Z'
    }])
  })

  it('applies each class its own period (connection data goes before audit events of the same day)', () => {
    const now = new Date('2026-07-01T12:00:00Z')
    const day = '2026.03.01' // 121 days before now
    const plan = planRetention(['ssh', 'ftp', 'db', 'panel', 'api'].map(c => `auditline-${c}-${day}`), periods, 'auditline', now)
    assert.deepEqual(plan.expired.map(e => e.eventClass).sort(), ['ftp', 'ssh'])
    assert.deepEqual(plan.kept.map(k => k.eventClass).sort(), ['api', 'db', 'panel'])
  })

  it('plans statistics indices with the stats period', () => {
    const now = new Date('2027-06-01T00:00:00Z')
    const plan = planRetention(['auditline-stats-2026.04.01', 'auditline-stats-2026.05.01'], periods, 'auditline', now)
    // 2026-04-02 + 400 d = 2027-05-07 ≤ now; 2026-05-02 + 400 d = 2027-06-06 > now.
    assert.deepEqual(plan.expired.map(e => e.index), ['auditline-stats-2026.04.01'])
    assert.deepEqual(plan.kept.map(k => [k.index, k.reason]), [['auditline-stats-2026.05.01', 'not_expired']])
  })

  it('keeps indices of classes without a period, and names that are not daily indices of the prefix', () => {
    const now = new Date('2040-01-01T00:00:00Z')
    const plan = planRetention([
      'auditline-custom-2020.01.01', // no policy for this class
      'auditline-seals', // not a daily index
      'auditline-ssh-2020.02.30', // no such day
      'auditline-ssh-2020.1.1', // not the indexer's format
      'auditline-web-stats-2020.01.01', // class with a dash: another deployment's prefix `auditline-web`
      'other-ssh-2020.01.01', // another prefix
      'auditline-ssh-2020.01.01'
    ], periods, 'auditline', now)
    assert.deepEqual(plan.expired.map(e => e.index), ['auditline-ssh-2020.01.01'])
    assert.deepEqual(Object.fromEntries(plan.kept.map(k => [k.index, k.reason])), {
      'auditline-custom-2020.01.01': 'no_policy',
      'auditline-seals': 'not_daily',
      'auditline-ssh-2020.02.30': 'not_daily',
      'auditline-ssh-2020.1.1': 'not_daily',
      'auditline-web-stats-2020.01.01': 'not_daily',
      'other-ssh-2020.01.01': 'not_daily'
    })
  })

  it('does not take a class from the object prototype for a policy', () => {
    const plan = planRetention(['auditline-constructor-2020.01.01'], periods, 'auditline', new Date('2040-01-01T00:00:00Z'))
    assert.deepEqual(plan.expired, [])
  })

  it('reads a prefix that itself contains dashes', () => {
    assert.deepEqual(parseDailyIndex('acme-prod', 'acme-prod-db-2026.12.31'), { index: 'acme-prod-db-2026.12.31', eventClass: 'db', day: '2026-12-31', dayStartMs: Date.parse('2026-12-31T00:00:00Z') })
    assert.equal(parseDailyIndex('acme', 'acme-prod-db-2026.12.31'), undefined)
  })

  it('orders deletions oldest day first, then by name', () => {
    const plan = planRetention(['auditline-ssh-2020.01.02', 'auditline-ftp-2020.01.02', 'auditline-ssh-2020.01.01'], periods, 'auditline', new Date('2030-01-01T00:00:00Z'))
    assert.deepEqual(plan.expired.map(e => e.index), ['auditline-ssh-2020.01.01', 'auditline-ftp-2020.01.02', 'auditline-ssh-2020.01.02'])
  })
})

describe('retention: configuration', () => {
  it('fills the documented defaults', () => {
    const cfg = validate({})
    assert.deepEqual(periodsOf(cfg), periods)
    assert.equal(cfg.intervalMs, 3_600_000)
  })

  it('keeps the defaults of classes the file does not name, and accepts further classes', () => {
    assert.deepEqual(periodsOf(validate({ classes: { ssh: 30, custom: 10 } })), { ...periods, ssh: 30, custom: 10 })
  })

  it('refuses periods that are not whole days ≥ 1, and class names with a dash', () => {
    for (const classes of [{ ssh: 0 }, { ssh: 1.5 }, { ssh: '90d' }, { 'web-stats': 400 }, { Ssh: 3 }]) {
      assert.throws(() => validate({ classes }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'), JSON.stringify(classes))
    }
  })
})
