import assert from 'node:assert/strict'
import { checkBody, fingerprint, parseRfc3339, toEvent, type PanelEventBody } from '../../../ingest/panel-http/transform.ts'

const body: PanelEventBody = {
  id: 'chg-1',
  timestamp: '2026-11-28T23:30:00-02:00',
  actor: { kind: 'customer', id: 'cust-1' },
  customer: 'cust-1',
  object: { type: 'group', id: 'admins' },
  action: 'add_member',
  changed_fields: ['members']
}

describe('panel transform', () => {
  it('normalises RFC 3339 times to UTC and refuses impossible or zone-less ones', () => {
    assert.equal(parseRfc3339('2026-11-28T23:30:00-02:00'), '2026-11-29T01:30:00.000Z')
    assert.equal(parseRfc3339('2028-02-29t12:00:00.123456z'), '2028-02-29T12:00:00.123Z')
    for (const bad of ['2026-02-29T12:00:00Z', '2026-11-28T24:00:00Z', '2026-11-28T12:00:00', '2026-11-28 12:00:00Z', '2026-11-28T12:00:00+25:00']) {
      assert.equal(parseRfc3339(bad), undefined, bad)
    }
  })

  it('maps groups and roles to iam/group and other verbs to change', () => {
    const e = toEvent(body, { clientId: 'panel1', sequence: 7 })
    assert.deepEqual(e.event.category, ['iam'])
    assert.deepEqual(e.event.type, ['group', 'change'])
    assert.equal(e.event.action, 'panel_add_member')
    assert.equal(e['@timestamp'], '2026-11-29T01:30:00.000Z')
    assert.equal(e.user?.name, 'cust-1', 'user.name falls back to actor.id')
    assert.equal(e.source, undefined)
  })

  it('builds the identical event (id, hash) from the identical body and position', () => {
    const a = toEvent(body, { clientId: 'panel1', sequence: 7 })
    const b = toEvent(structuredClone(body), { clientId: 'panel1', sequence: 7 })
    assert.deepEqual(a, b)
    assert.notEqual(toEvent(body, { clientId: 'panel2', sequence: 7 }).event.id, a.event.id, 'another client is another stream')
  })

  it('fingerprints content independently of key order', () => {
    const reordered = { changed_fields: ['members'], action: 'add_member', object: { id: 'admins', type: 'group' }, customer: 'cust-1', actor: { id: 'cust-1', kind: 'customer' as const }, timestamp: body.timestamp, id: 'chg-1' }
    assert.equal(fingerprint(reordered), fingerprint(body))
    assert.notEqual(fingerprint({ ...body, changed_fields: [] }), fingerprint(body))
  })

  it('lists every problem of a body, not only the first', () => {
    const r = checkBody({ ...body, action: 'Update!', changed_fields: ['a', 'a'], extra: 1 }, 3, { requireTicketForStaff: true })
    assert.ok('errors' in r)
    assert.deepEqual(r.errors.map(e => e.field).sort(), ['action', 'changed_fields', 'extra'])
    assert.ok(r.errors.every(e => e.index === 3))
  })
})
