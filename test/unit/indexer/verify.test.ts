import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { ECS_VERSION, SCHEMA_VERSION, eventId, sealEvent, type AuditEvent } from '../../../lib/ecs.ts'
import { checkpointHash, generateSealKey, loadPrivateKey, type SealCheckpoint } from '../../../lib/seal.ts'
import { checkpointDocId } from '../../../lib/seal-template.ts'
import { chainCheckpoints, planTrees } from '../../../indexer/elasticsearch/seal.ts'
import { checkChain, checkRecordedHead, classifyMissing, classifyUnsealed, gapFinding, narrowGap, sealBook, unseenSealed, verifyInMemory, type Finding, type IndexedDoc, type StoredCheckpoint } from '../../../indexer/verify.ts'
import { indexMatcher } from '../../../lib/index-pattern.ts'
import { sealsIndexName, sealsTemplate } from '../../../lib/seal-template.ts'
import { eventIndexPattern } from '../../../lib/elasticsearch.ts'

const INDEX = 'x-ssh-2026.01.01'
const SEALS = 'x_seals'
const NOW = new Date('2026-01-01T12:00:00Z')
const INGESTED = '2026-01-01T10:00:00.000Z'
const key = generateSealKey()
const priv = loadPrivateKey(key.privatePem)
const pub = createPublicKey(key.publicPem)

function event (seq: number, stream = 'h/auth'): AuditEvent {
  return sealEvent({
    '@timestamp': `2026-01-01T00:00:${String(seq).padStart(2, '0')}.000Z`,
    ecs: { version: ECS_VERSION },
    event: { id: eventId(stream, seq), kind: 'event', category: ['authentication'], type: ['start'], action: 'ssh_login', outcome: 'success', dataset: 'sshd', sequence: seq },
    auditline: { schema: SCHEMA_VERSION, stream, class: 'ssh' },
    user: { name: `user${seq}` }
  })
}

const indexed = (e: AuditEvent, ingested = INGESTED): IndexedDoc => ({ index: INDEX, id: e.event.id, source: { ...e, event: { ...e.event, ingested } } })

/** Six events of one stream, sealed into two checkpoints (3 + 3), signed at 10:01. */
function world (): { events: AuditEvent[], docs: IndexedDoc[], cps: StoredCheckpoint[] } {
  const events = [0, 1, 2, 3, 4, 5].map(n => event(n))
  const leaves = events.map(e => ({ index: INDEX, id: e.event.id, hash: e.event.hash as string, '@timestamp': e['@timestamp'] }))
  const cps = chainCheckpoints(planTrees(leaves, 3), null, priv, new Date('2026-01-01T10:01:00Z'))
  return { events, docs: events.map(e => indexed(e)), cps: cps.map(cp => ({ docId: checkpointDocId(cp.seq), cp })) }
}

function verify (docs: IndexedDoc[], cps: StoredCheckpoint[], opts: { graceMs?: number, deadLettered?: Map<string, Set<number>> } = {}): { findings: Finding[], pending: number, verified: number } {
  return verifyInMemory({ checkpoints: cps, docs, keys: [pub], sealsIndex: SEALS, now: NOW, graceMs: opts.graceMs ?? 60_000, ...(opts.deadLettered === undefined ? {} : { deadLettered: opts.deadLettered }) })
}

const kinds = (fs: Finding[]): string[] => fs.map(f => `${f.kind} ${f.id ?? ''}`).sort()
const hashOf = (s: StoredCheckpoint): string => checkpointHash(s.cp as SealCheckpoint)
const withIngested = (d: IndexedDoc, ingested: string): IndexedDoc => {
  const e = d.source as AuditEvent
  return { ...d, source: { ...e, event: { ...e.event, ingested } } }
}

describe('verify: classification on in-memory data', () => {
  it('finds nothing in an untouched, sealed index', () => {
    const { docs, cps } = world()
    const r = verify(docs, cps)
    assert.deepEqual(r.findings, [])
    assert.equal(r.verified, 6)
  })

  it('names a changed field (content no longer matches event.hash) as changed', () => {
    const { docs, cps, events } = world()
    const d = docs[2] as IndexedDoc
    ;(d.source as AuditEvent).user = { name: 'someone-else' }
    const r = verify(docs, cps)
    assert.deepEqual(kinds(r.findings), [`changed ${events[2]?.event.id}`])
    assert.match(r.findings[0]?.detail ?? '', /content changed after sealing/)
  })

  it('names content and hash rewritten together (a correct self-hash) as changed against the seal', () => {
    const { docs, cps, events } = world()
    const forged = sealEvent({ ...(events[1] as AuditEvent), user: { name: 'mallory' } })
    docs[1] = indexed(forged)
    const r = verify(docs, cps)
    assert.deepEqual(kinds(r.findings), [`changed ${events[1]?.event.id}`])
    assert.match(r.findings[0]?.detail ?? '', /replaced after sealing/)
  })

  it('names a deleted event as deleted, and the hole it leaves in the stream as a gap', () => {
    const { docs, cps, events } = world()
    docs.splice(4, 1)
    const r = verify(docs, cps)
    assert.deepEqual(kinds(r.findings), [`deleted ${events[4]?.event.id}`, `gap ${events[5]?.event.id}`])
    const gap = r.findings.find(f => f.kind === 'gap')
    assert.deepEqual(gap?.sequence, { from: 4, to: 4 })
    assert.equal(gap?.stream, 'h/auth')
    assert.match(gap?.detail ?? '', /may be dead letters/)
  })

  it('names a forged event with a valid self-hash as inserted once the indexer has sealed past it', () => {
    const { docs, cps } = world()
    const forged = event(6, 'h/other') // correct hash, valid id, but never indexed by the indexer
    docs.push(indexed(forged, '2026-01-01T09:00:00.000Z'))
    const r = verify(docs, cps)
    assert.deepEqual(kinds(r.findings), [`inserted ${forged.event.id}`])
  })

  it('counts a recent unsealed event as pending, a future-dated one as inserted, and one with no seal since as unsealed', () => {
    const e = event(9)
    const opts = { now: NOW, graceMs: 60_000, lastSealedAt: new Date('2026-01-01T10:01:00Z') }
    assert.equal(classifyUnsealed(indexed(e, '2026-01-01T11:59:30.000Z'), undefined, opts), undefined)
    assert.equal(classifyUnsealed(indexed(e, '2026-01-02T00:00:00.000Z'), undefined, opts)?.kind, 'inserted')
    assert.equal(classifyUnsealed({ index: INDEX, id: 'x', source: { ...e, event: { ...e.event, ingested: undefined } } }, undefined, opts)?.kind, 'inserted')
    assert.equal(classifyUnsealed(indexed(e, '2026-01-01T10:30:00.000Z'), undefined, opts)?.kind, 'unsealed')
    assert.equal(classifyUnsealed(indexed(e, '2026-01-01T10:30:00.000Z'), undefined, { ...opts, lastSealedAt: new Date('2026-01-01T11:00:00Z') })?.kind, 'inserted')
    // Pending, but its content does not match its hash: changed all the same.
    const tampered = indexed(e, '2026-01-01T11:59:30.000Z');
    (tampered.source as AuditEvent).user = { name: 'x' }
    assert.equal(classifyUnsealed(tampered, undefined, opts)?.kind, 'changed')
  })

  it('accepts an event sealed twice with the same hash (a replay), and flags one sealed with two hashes', () => {
    const { docs, cps, events } = world()
    const e0 = events[0] as AuditEvent
    const replay = chainCheckpoints([[{ index: INDEX, id: e0.event.id, hash: e0.event.hash as string, '@timestamp': e0['@timestamp'] }]],
      { seq: 1, hash: hashOf(cps[1] as StoredCheckpoint) }, priv, new Date('2026-01-01T10:02:00Z'))[0] as SealCheckpoint
    assert.deepEqual(verify(docs, [...cps, { docId: checkpointDocId(2), cp: replay }]).findings, [])
    const other = chainCheckpoints([[{ index: INDEX, id: e0.event.id, hash: 'f'.repeat(64), '@timestamp': e0['@timestamp'] }]],
      { seq: 1, hash: hashOf(cps[1] as StoredCheckpoint) }, priv, new Date('2026-01-01T10:02:00Z'))[0] as SealCheckpoint
    const r = verify(docs, [...cps, { docId: checkpointDocId(2), cp: other }])
    assert.ok(r.findings.some(f => f.kind === 'changed' && f.id === e0.event.id && /different hashes/.test(f.detail)))
  })
})

describe('verify: the checkpoint chain', () => {
  it('reports a changed checkpoint (signature) and the broken link after it; its events count as unsealed', () => {
    const { docs, cps } = world()
    const cp0 = cps[0]?.cp as SealCheckpoint
    cps[0] = { docId: checkpointDocId(0), cp: { ...cp0, to: '2027-01-01T00:00:00.000Z' } }
    const r = verify(docs, cps)
    const chain = r.findings.filter(f => f.kind === 'chain')
    assert.deepEqual(chain.map(f => f.id), [checkpointDocId(0), checkpointDocId(1)])
    assert.match(chain[0]?.detail ?? '', /signature does not verify/)
    assert.match(chain[1]?.detail ?? '', /prev .* is not the hash of checkpoint 0/)
    assert.deepEqual(r.findings.filter(f => f.kind === 'unsealed').length, 3)
    assert.ok(r.findings.filter(f => f.kind === 'unsealed').every(f => /failed verification/.test(f.detail)))
  })

  it('reports a deleted checkpoint as a seq gap', () => {
    const { docs, cps } = world()
    const third = chainCheckpoints([[{ index: INDEX, id: 'z'.repeat(32), hash: 'a'.repeat(64), '@timestamp': '2026-01-01T00:00:00Z' }]], { seq: 1, hash: hashOf(cps[1] as StoredCheckpoint) }, priv, new Date('2026-01-01T10:05:00Z'))[0] as SealCheckpoint
    const r = verify(docs, [cps[0] as StoredCheckpoint, { docId: checkpointDocId(2), cp: third }])
    const chain = r.findings.filter(f => f.kind === 'chain')
    assert.deepEqual(chain.map(f => f.id), [checkpointDocId(1)])
    assert.match(chain[0]?.detail ?? '', /checkpoint 1 is missing/)
    // The events only the deleted checkpoint sealed are no longer covered: the indexer sealed after them, so inserted.
    assert.equal(r.findings.filter(f => f.kind === 'inserted').length, 3)
  })

  it('reports checkpoints signed by a key that is not given, stored under another seq, or with a root that does not match', () => {
    const { docs, cps } = world()
    const other = generateSealKey()
    const foreign = verifyInMemory({ checkpoints: cps, docs, keys: [createPublicKey(other.publicPem)], sealsIndex: SEALS, now: NOW, graceMs: 60_000 })
    assert.ok(foreign.findings.filter(f => f.kind === 'chain').every(f => /not one of the given public keys/.test(f.detail)))
    const moved = verify(docs, [cps[0] as StoredCheckpoint, { docId: checkpointDocId(7), cp: cps[1]?.cp }])
    assert.ok(moved.findings.some(f => f.kind === 'chain' && /stored as cp-000000000007 but says seq 1/.test(f.detail)))
    const cp1 = cps[1]?.cp as SealCheckpoint
    const rooted = verify(docs, [cps[0] as StoredCheckpoint, { docId: checkpointDocId(1), cp: { ...cp1, hashes: [...cp1.hashes].reverse() } }])
    assert.ok(rooted.findings.some(f => f.kind === 'chain' && /Merkle root does not match/.test(f.detail)))
  })
})

describe('verify: a time range', () => {
  it('looks up only the sealed events whose sealed @timestamp lies in the range', () => {
    const { cps, events } = world()
    const book = sealBook(cps.map(c => c.cp as SealCheckpoint))
    const ids = (n: number[]): string[] => n.map(i => (events[i] as AuditEvent).event.id)
    assert.deepEqual(unseenSealed(INDEX, book, new Set(), { from: '2026-01-01T00:00:02Z', to: '2026-01-01T00:00:04.000Z' }), ids([2, 3, 4]))
    assert.deepEqual(unseenSealed(INDEX, book, new Set(ids([3])), { from: '2026-01-01T00:00:02Z' }), ids([2, 4, 5]))
    assert.deepEqual(unseenSealed('other', book, undefined), [])
  })

  it('checks the link from a checkpoint of interest to a successor fetched only as a neighbour', () => {
    const { cps } = world()
    const cp0 = cps[0]?.cp as SealCheckpoint
    const changed = { docId: checkpointDocId(0), cp: { ...cp0, from: '2020-01-01T00:00:00Z' } }
    const r = checkChain([changed], new Map([[1, cps[1] as StoredCheckpoint]]), [pub], SEALS, 1)
    assert.deepEqual(r.findings.map(f => f.id), [checkpointDocId(0), checkpointDocId(1)])
    assert.match(r.findings[1]?.detail ?? '', /is not the hash of checkpoint 0/)
    assert.equal(r.trusted.length, 0)
  })
})

describe('verify: retention', () => {
  it('counts sealed events of an index deleted by retention after the seal as retired, not deleted', () => {
    const { cps, events } = world()
    const book = sealBook(cps.map(c => c.cp as SealCheckpoint))
    const ids = events.map(e => e.event.id)
    const after = classifyMissing(INDEX, ids, new Map(), book, new Date('2026-01-01T11:00:00Z'))
    assert.deepEqual([after.findings.length, after.retired], [0, 6])
    // A deletion record older than the seals explains nothing: those events were sealed after it.
    const before = classifyMissing(INDEX, ids, new Map(), book, new Date('2026-01-01T09:00:00Z'))
    assert.deepEqual([before.findings.map(f => f.kind), before.retired], [Array(6).fill('deleted'), 0])
  })
})

describe('verify: a head recorded earlier', () => {
  it('must still exist with the recorded hash (a chain cut short at its end has no broken link to show)', () => {
    const { cps } = world()
    const head = cps[1] as StoredCheckpoint
    const recorded = { seq: 1, hash: hashOf(head) }
    assert.equal(checkRecordedHead(recorded, head, SEALS), undefined)
    assert.match(checkRecordedHead(recorded, null, SEALS)?.detail ?? '', /missing: the chain was cut short/)
    const changed = { ...head, cp: { ...(head.cp as SealCheckpoint), signed_at: '2027-01-01T00:00:00.000Z' } }
    assert.equal(checkRecordedHead(recorded, changed, SEALS)?.kind, 'chain')
  })
})

describe('verify: the seals index', () => {
  it('is named so that the event pattern (audit search, retention) never matches it', () => {
    assert.equal(sealsIndexName('x'), 'x_seals')
    assert.ok(!indexMatcher(eventIndexPattern('x'))(sealsIndexName('x')))
    const t = sealsTemplate('x')
    assert.deepEqual(t.body.index_patterns, ['x_seals'])
    const mapping = JSON.stringify((t.body.template as { mappings: unknown }).mappings)
    for (const type of mapping.matchAll(/"type":"([a-z_]+)"/g)) assert.ok(['keyword', 'long', 'date'].includes(type[1] as string), `core type ${type[1]}`)
  })
})

describe('verify: sequence gaps', () => {
  it('narrows a gap by numbers found elsewhere and explains it by dead letters', () => {
    const g = { stream: 's', from: 3, to: 8, before: { index: 'i', id: 'a' }, after: { index: 'i', id: 'b' } }
    assert.deepEqual(narrowGap(g, new Set([4, 5, 8])).map(x => [x.from, x.to]), [[3, 3], [6, 7]])
    assert.deepEqual(narrowGap(g, new Set([3, 4, 5, 6, 7, 8])), [])
    assert.equal(gapFinding(g, new Set([3, 4, 5, 6, 7, 8])).explained, true)
    const part = gapFinding(g, new Set([3]))
    assert.equal(part.explained, undefined)
    assert.match(part.detail, /5 of the 6 .* not dead letters/)
  })

  it('reports a gap explained by dead letters as explained', () => {
    const { docs, cps } = world()
    // Sequence 3 was dead-lettered; 4 and 5 were indexed a second ago and wait for the next seal.
    const indexedDocs = [...docs.slice(0, 3), ...docs.slice(4).map(d => withIngested(d, '2026-01-01T11:59:59.000Z'))]
    const r = verify(indexedDocs, [cps[0] as StoredCheckpoint], { deadLettered: new Map([['h/auth', new Set([3])]]) })
    assert.deepEqual(r.findings.map(f => [f.kind, f.explained]), [['gap', true]])
    assert.equal(r.pending, 2)
  })
})

describe('verify: index patterns', () => {
  it('matches comma lists with wildcards and exclusions like Elasticsearch', () => {
    const m = indexMatcher('x-*,-x-stats-*')
    assert.ok(m('x-ssh-2026.01.01'))
    assert.ok(!m('x-stats-2026.01.01'))
    assert.ok(!m('x_seals'))
    assert.ok(!m('y-ssh-2026.01.01'))
    assert.ok(indexMatcher('x-ssh-2026.01.0?')('x-ssh-2026.01.0?'))
  })
})
