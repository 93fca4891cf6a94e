import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { sealEvent, type AuditEvent } from '../../../lib/ecs.ts'
import { generateSealKey, verifyCheckpointSignature, checkpointStatementHash, type SealCheckpoint } from '../../../lib/seal.ts'
import { TreeProver, buildBundle, eventsCsv, readTar, verifyBundle, writeTar, type Bundle, type ExportMeta } from '../../../lib/evidence.ts'
import { chainCheckpoints, loadSealKey, planTrees, type SealLeaf } from '../../../indexer/elasticsearch/seal.ts'
import { isAuditError } from '../../../lib/errors.ts'
import { inclusionProof, leafHash } from '../../../lib/merkle.ts'

/** An audit event as the pipeline stores it (hash set); only the fields the bundle reads matter here. */
function ev (i: number, extra: Record<string, unknown> = {}): AuditEvent {
  const ts = new Date(Date.UTC(2026, 10, 29, 8, 0, i)).toISOString()
  // A hand-made event: the schema's other required fields play no part in hashing or proving.
  return sealEvent({
    '@timestamp': ts,
    event: { id: `ev-${i}`, action: i % 2 === 0 ? 'ssh_login' : 'ssh_logout', category: ['authentication'], outcome: 'success', sequence: i },
    user: { name: `user${i}` },
    host: { name: 'web01' },
    ...extra
  } as unknown as AuditEvent)
}

const meta: ExportMeta = { id: 'exp-1', caseId: 'CASE-42', reason: 'DPA request 2026/17', requester: 'auditor-bob', query: { 'user.name': ['user1'] }, created: '2026-11-29T09:00:00.000Z' }

/** 12 events sealed in 3 real checkpoints (trees of 5, 5, 2) with a real key; the export takes 4 of them. */
function world (): { all: AuditEvent[], cps: SealCheckpoint[], publicPem: string, exported: AuditEvent[] } {
  const k = generateSealKey()
  const key = loadSealKey({ sliceMs: 1000, maxLeaves: 5, privateKey: k.privatePem }).key
  const all = Array.from({ length: 12 }, (_, i) => ev(i))
  const leaves: SealLeaf[] = all.map(e => ({ index: 'al-ssh', id: e.event.id, hash: e.event.hash as string, '@timestamp': e['@timestamp'] }))
  const cps = chainCheckpoints(planTrees(leaves, 5), null, key, new Date('2026-11-29T08:01:00Z'))
  return { all, cps, publicPem: k.publicPem, exported: [all[1], all[3], all[7], all[10]] as AuditEvent[] }
}

function build (w: ReturnType<typeof world>): Bundle {
  return buildBundle({ meta, events: w.exported, checkpoints: w.cps, chain: w.cps, publicKeyPem: w.publicPem }).bundle
}

/** The bundle with `file` replaced, the manifest left as it was (what an attacker without the key can do). */
function tampered (b: Bundle, file: string, f: (text: string) => string): Bundle {
  const out = new Map(b)
  out.set(file, Buffer.from(f((b.get(file) as Buffer).toString('utf8'))))
  return out
}

function expectProblem (b: Bundle, re: RegExp, key?: ReturnType<typeof createPublicKey>): void {
  const r = verifyBundle(b, key)
  assert.equal(r.ok, false, 'the bundle must not verify')
  assert.ok(r.problems.some(p => re.test(p)), `expected a problem matching ${String(re)}, got:\n${r.problems.join('\n')}`)
}

describe('lib: evidence bundles (build and offline verify)', () => {
  it('proves leaves with memoized subtrees exactly as merkle.ts inclusionProof does, for every leaf of trees of 1 to 40', () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)))
      const prover = new TreeProver(leaves)
      for (let m = 0; m < n; m++) assert.deepEqual(prover.proof(m), inclusionProof(leaves, m), `n=${n} m=${m}`)
    }
  })

  it('seals a root statement with its own signature, covered by the checkpoint signature, chained by statement hash', () => {
    const w = world()
    const pub = createPublicKey(w.publicPem)
    for (const cp of w.cps) {
      assert.ok(typeof cp.root_sig === 'string' && cp.root_sig.length > 0)
      assert.ok(verifyCheckpointSignature(cp, pub))
      const other = w.cps.find(c => c.seq !== cp.seq) as SealCheckpoint
      assert.equal(verifyCheckpointSignature({ ...cp, root_sig: other.root_sig as string }, pub), false, 'sig covers root_sig')
    }
    assert.equal(w.cps[0]?.prev_statement, null)
    assert.equal(w.cps[1]?.prev_statement, checkpointStatementHash(w.cps[0] as SealCheckpoint))
  })

  it('round trip: a fresh bundle verifies with the trusted key, also after tar write/read', () => {
    const w = world()
    const b = build(w)
    const r = verifyBundle(b, createPublicKey(w.publicPem))
    assert.deepEqual(r.problems, [])
    assert.equal(r.ok, true)
    assert.equal(r.events, 4)
    assert.equal(r.checkpoints, 3)
    const back = readTar(writeTar('evidence-exp-1', b, new Date('2026-11-29T09:00:00Z')))
    assert.deepEqual([...back.keys()].sort(), [...b.keys()].sort())
    assert.equal(verifyBundle(back, createPublicKey(w.publicPem)).ok, true)
  })

  it('discloses no other event: no foreign id, hash or timestamp appears anywhere in the bundle', () => {
    const w = world()
    const text = [...build(w).values()].map(x => x.toString('utf8')).join('\n')
    for (const e of w.all.filter(x => !w.exported.includes(x))) {
      assert.ok(!text.includes(e.event.id + '"'), `id ${e.event.id} leaked`)
      assert.ok(!text.includes(e.event.hash as string), `hash of ${e.event.id} leaked`)
      assert.ok(!text.includes(e['@timestamp']), `timestamp of ${e.event.id} leaked`)
    }
  })

  it('names the line and the event when one byte of events.ndjson changes', () => {
    const w = world()
    const b = tampered(build(w), 'events.ndjson', t => t.replace('"user3"', '"user4"'))
    expectProblem(b, /^events\.ndjson: changed \(sha256/)
    expectProblem(b, /^events\.ndjson line 2: event ev-3 changed \(hash [0-9a-f]{64}, sealed [0-9a-f]{64}\)$/)
  })

  it('names the missing event when a line is removed', () => {
    const w = world()
    const b = tampered(build(w), 'events.ndjson', t => t.split('\n').filter((_, i) => i !== 2).join('\n'))
    expectProblem(b, /^line missing: event ev-7 listed in proofs\.ndjson \(line 3\) but not in events\.ndjson$/)
  })

  it('names the extra line when an event is added (new, or a repeat)', () => {
    const w = world()
    const extra = JSON.stringify(w.all[5]) + '\n'
    expectProblem(tampered(build(w), 'events.ndjson', t => t + extra), /^events\.ndjson extra line 5: event ev-5 has no proof$/)
    const again = JSON.stringify(w.exported[0]) + '\n'
    expectProblem(tampered(build(w), 'events.ndjson', t => t + again), /^events\.ndjson extra line 5: event ev-1 appears again \(first at line 1\)$/)
  })

  it('rejects a changed proof, naming the proof line and event', () => {
    const w = world()
    const b = tampered(build(w), 'proofs.ndjson', t => {
      const ls = t.split('\n')
      const p = JSON.parse(ls[1] as string) as { proof: string[] }
      p.proof[0] = 'f'.repeat(64)
      ls[1] = JSON.stringify(p)
      return ls.join('\n')
    })
    expectProblem(b, /^proofs\.ndjson line 2: inclusion proof of event ev-3 \(hash [0-9a-f]{64}\) does not lead to the signed root of checkpoint 0$/)
  })

  it('rejects a changed root statement (signature) and a broken chain link', () => {
    const w = world()
    const b = tampered(build(w), 'checkpoints.ndjson', t => {
      const ls = t.split('\n')
      const st = JSON.parse(ls[1] as string) as { root: string }
      st.root = '0'.repeat(64)
      ls[1] = JSON.stringify(st)
      return ls.join('\n')
    })
    expectProblem(b, /^checkpoints\.ndjson line 2: root statement 1 signature does not verify/)
    expectProblem(b, /^checkpoints\.ndjson line 3: chain broken: statement 2 does not link to statement 1$/)
    expectProblem(b, /^proofs\.ndjson line 3: inclusion proof of event ev-7/)
    const dropped = tampered(build(w), 'checkpoints.ndjson', t => t.split('\n').filter((_, i) => i !== 1).join('\n'))
    expectProblem(dropped, /^checkpoints\.ndjson line 2: chain gap: statement 2 follows 0$/)
  })

  it('rejects a swapped public key: against the trusted key, and signatures under the bundled one', () => {
    const w = world()
    const other = generateSealKey()
    expectProblem(build(w), /signature does not verify with key/, createPublicKey(other.publicPem))
    const swapped = tampered(build(w), 'public-key.pem', () => other.publicPem)
    expectProblem(swapped, /^public-key\.pem: key [0-9a-f]{64} is not the trusted key/, createPublicKey(w.publicPem))
    expectProblem(swapped, /signature does not verify with key/)
  })

  it('names an added and a missing file', () => {
    const w = world()
    const b = build(w)
    const added = new Map(b).set('notes.txt', Buffer.from('x'))
    expectProblem(added, /^notes\.txt: extra file, not listed in manifest\.json$/)
    const missing = new Map(b)
    missing.delete('proofs.ndjson')
    expectProblem(missing, /^proofs\.ndjson: missing \(listed in manifest\.json\)$/)
    expectProblem(missing, /^events\.ndjson extra line 1: event ev-1 has no proof$/)
  })

  it('refuses to build a bundle for an event no checkpoint seals, or whose stored hash differs from the sealed one', () => {
    const w = world()
    const stray = ev(99)
    assert.throws(() => buildBundle({ meta, events: [stray], checkpoints: w.cps, chain: w.cps, publicKeyPem: w.publicPem }), e => isAuditError(e) && e.code === 'AUD_ERR_EXPORT_BUILD' && e.message.includes('ev-99 is not sealed'))
    const changed = { ...w.exported[0], user: { name: 'mallory' } } as AuditEvent
    assert.throws(() => buildBundle({ meta, events: [changed], checkpoints: w.cps, chain: w.cps, publicKeyPem: w.publicPem }), e => isAuditError(e) && e.message.includes('does not hash to its sealed hash'))
  })

  it('writes CSV with the documented columns and neutralises spreadsheet formulas', () => {
    const w = world()
    const formula = sealEvent({ ...w.exported[0], user: { name: '=HYPERLINK("x")' } } as AuditEvent)
    const csv = (buildBundle({ meta, events: [w.exported[1] as AuditEvent], checkpoints: w.cps, chain: w.cps, publicKeyPem: w.publicPem }).bundle.get('events.csv') as Buffer).toString()
    assert.equal(csv.split('\r\n')[0], '@timestamp,event.id,event.action,event.category,event.outcome,user.name,source.ip,host.name,auditline.class,event.reason,event.hash')
    assert.match(csv.split('\r\n')[1] as string, /^2026-11-29T08:00:03\.000Z,ev-3,ssh_logout,authentication,success,user3,,web01,,,[0-9a-f]{64}$/)
    assert.match(eventsCsv([formula]), /,"'=HYPERLINK\(""x""\)",/)
  })
})
