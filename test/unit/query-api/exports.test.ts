import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createPublicKey } from 'node:crypto'
import { buildApp } from '../../../query-api/app.ts'
import { validate } from '../../../query-api/run.ts'
import { createKey } from '../../../lib/apikey.ts'
import { createLogger } from '../../../lib/log.ts'
import { sealEvent, type AuditEvent } from '../../../lib/ecs.ts'
import { generateSealKey, type SealCheckpoint } from '../../../lib/seal.ts'
import { readTar, verifyBundle } from '../../../lib/evidence.ts'
import { chainCheckpoints, loadSealKey, planTrees } from '../../../indexer/elasticsearch/seal.ts'
import { ExportJobs, type SealSource } from '../../../query-api/exports.ts'
import { progressReporter } from '../../../cli/export.ts'
import type { ApiAuditInput, ApiAuditor } from '../../../query-api/audit.ts'
import type { EventFilter, EventStore } from '../../../query-api/store/types.ts'

function ev (i: number): AuditEvent {
  // A hand-made stored event: only id, timestamp and hash matter to the exporter.
  return sealEvent({ '@timestamp': new Date(Date.UTC(2026, 10, 29, 8, 0, i)).toISOString(), event: { id: `ev-${i}`, action: 'ssh_login' }, user: { name: 'anna' } } as unknown as AuditEvent)
}

describe('query API: evidence export routes and jobs (app.inject, fake store, real seals)', () => {
  let dir: string
  let auditor1: Awaited<ReturnType<typeof createKey>>
  let auditor2: Awaited<ReturnType<typeof createKey>>
  let security: Awaited<ReturnType<typeof createKey>>
  const seal = generateSealKey()
  const events = Array.from({ length: 9 }, (_, i) => ev(i))
  // Events 0..6 are sealed (trees of 3); 7 and 8 are not yet.
  const cps: SealCheckpoint[] = chainCheckpoints(
    planTrees(events.slice(0, 7).map(e => ({ index: 'al-ssh', id: e.event.id, hash: e.event.hash as string, '@timestamp': e['@timestamp'] })), 3),
    null, loadSealKey({ sliceMs: 1000, maxLeaves: 3, privateKey: seal.privatePem }).key, new Date('2026-11-29T08:01:00Z'))
  const filters: EventFilter[] = []
  const store: EventStore = {
    // Pages of 2, to exercise the cursor.
    searchEvents: async (f, page) => {
      filters.push(f)
      const from = page.after === undefined ? 0 : Number(page.after)
      const slice = events.slice(from, from + 2)
      return { events: slice, total: events.length, totalIsLowerBound: false, ...(from + 2 < events.length ? { next: String(from + 2) } : {}) }
    },
    countEvents: async () => ({ buckets: [], total: 0, other: 0 }),
    listSites: async () => ({ sites: [], truncated: false }),
    siteStats: async () => []
  }
  const seals: SealSource = {
    checkpointsHolding: async ids => cps.filter(c => c.ids.some(id => ids.includes(id))),
    chain: async (lo, hi) => cps.filter(c => c.seq >= lo && c.seq <= hi).map(({ ids: _i, hashes: _h, timestamps: _t, ...rest }) => rest)
  }
  const recorded: ApiAuditInput[] = []
  const auditor: ApiAuditor = { record: async i => { recorded.push(i) }, close: async () => {} }
  const log = createLogger({ level: 'silent', destination: new Writable({ write (_c, _e, cb) { cb() } }) })
  let app: ReturnType<typeof buildApp>
  let jobs: ExportJobs

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-exports-unit-'))
    auditor1 = await createKey()
    auditor2 = await createKey()
    security = await createKey()
    jobs = new ExportJobs({ store, seals, dir, maxEvents: 100, publicKeyPem: seal.publicPem })
    app = buildApp(validate({
      apiKeys: [
        { id: auditor1.id, hash: auditor1.hash, roles: ['auditor'], owner: 'auditor-one' },
        { id: auditor2.id, hash: auditor2.hash, roles: ['auditor'], owner: 'auditor-two' },
        { id: security.id, hash: security.hash, roles: ['security'], owner: 'sec' }
      ]
    }), { store, auditor, log, exports: jobs })
  })
  after(async () => {
    await app.close()
    await rm(dir, { recursive: true, force: true })
  })

  const req = (method: 'GET' | 'POST', url: string, k: string, body?: unknown) =>
    app.inject({ method, url, headers: { authorization: `ApiKey ${k}` }, ...(body === undefined ? {} : { payload: body as Record<string, unknown> }) })

  it('starts a job for an auditor, records it, runs it to a bundle that verifies, and records the download', async () => {
    recorded.length = 0
    const res = await req('POST', '/v1/exports', auditor1.key, { 'user.name': ['anna'], case_id: 'CASE-1', reason: 'DPA request' })
    assert.equal(res.statusCode, 202)
    const { id } = res.json<{ id: string }>()
    assert.equal(recorded[0]?.action, 'api_export')
    assert.equal(recorded[0]?.caseId, 'CASE-1')
    assert.deepEqual(filters[0], { user: ['anna'] })
    await jobs.idle()
    const status = (await req('GET', `/v1/exports/${id}`, auditor1.key)).json<{ status: string, counts: { events: number, unsealed_skipped: number, checkpoints: number }, progress: unknown, bundle: string }>()
    assert.equal(status.status, 'done')
    assert.deepEqual(status.counts, { events: 7, checkpoints: 3, unsealed_skipped: 2 })
    assert.deepEqual(status.progress, { phase: 'done', done: 7, total: 7 })
    const dl = await req('GET', status.bundle, auditor1.key)
    assert.equal(dl.statusCode, 200)
    assert.equal(dl.headers['content-type'], 'application/x-tar')
    const v = verifyBundle(readTar(dl.rawPayload), createPublicKey(seal.publicPem))
    assert.deepEqual(v.problems, [])
    assert.equal(recorded.filter(r => r.action === 'api_export').length, 2)
    assert.equal(recorded[1]?.route, '/v1/exports/:id/bundle')
  })

  it('refuses other roles (403), a body without case_id or reason (400), and hides a job from another auditor (404)', async () => {
    assert.equal((await req('POST', '/v1/exports', security.key, { case_id: 'C', reason: 'why not' })).statusCode, 403)
    const noReason = await req('POST', '/v1/exports', auditor1.key, { case_id: 'C' })
    assert.equal(noReason.statusCode, 400)
    assert.match(noReason.json<{ message: string }>().message, /reason/)
    const bad = await req('POST', '/v1/exports', auditor1.key, { case_id: 'C', reason: 'why not', 'source.ip': 'not-an-ip' })
    assert.equal(bad.statusCode, 400)
    const { id } = (await req('POST', '/v1/exports', auditor1.key, { case_id: 'C-2', reason: 'second' })).json<{ id: string }>()
    assert.equal((await req('GET', `/v1/exports/${id}`, auditor2.key)).statusCode, 404)
    assert.equal((await req('GET', `/v1/exports/${id}/bundle`, auditor2.key)).statusCode, 404)
    await jobs.idle()
  })

  it('answers 409 for a bundle that is not ready and reports a failed job with its error code', async () => {
    const failing = new ExportJobs({ store, seals, dir, maxEvents: 3, publicKeyPem: seal.publicPem })
    const job = failing.submit({ filter: {}, caseId: 'C', reason: 'too many', requester: 'x', ownerKey: 'k' })
    await failing.idle()
    assert.equal(job.status, 'failed')
    assert.equal(job.error?.code, 'AUD_ERR_EXPORT_TOO_LARGE')
    const slow = new ExportJobs({ store: { ...store, searchEvents: async () => await new Promise(() => {}) }, seals, dir, maxEvents: 3, publicKeyPem: seal.publicPem })
    const app2 = buildApp(validate({ apiKeys: [{ id: auditor1.id, hash: auditor1.hash, roles: ['auditor'], owner: 'a' }] }), { store, auditor, log, exports: slow })
    const { id } = (await app2.inject({ method: 'POST', url: '/v1/exports', headers: { authorization: `ApiKey ${auditor1.key}` }, payload: { case_id: 'C', reason: 'slow one' } })).json<{ id: string }>()
    const res = await app2.inject({ method: 'GET', url: `/v1/exports/${id}/bundle`, headers: { authorization: `ApiKey ${auditor1.key}` } })
    assert.equal(res.statusCode, 409)
    assert.equal(res.json<{ error: string }>().error, 'AUD_ERR_EXPORT_NOT_READY')
    await app2.close()
  })

  it('draws a progress bar on a terminal and writes plain lines per tenth otherwise', () => {
    let tty = ''
    const bar = progressReporter({ isTTY: true, write: (s: string) => { tty += s } })
    bar.update({ phase: 'events', done: 5, total: 10 })
    bar.end()
    assert.equal(tty, '\revents  [###############...............] 5/10 events\n')
    let plain = ''
    const lines = progressReporter({ isTTY: false, write: (s: string) => { plain += s } })
    for (let i = 1; i <= 10; i++) lines.update({ phase: 'events', done: i * 100 + 1, total: 1001 })
    assert.equal(plain.split('\n').filter(l => l !== '').length, 10)
    assert.match(plain, /^export: events 10% \(101\/1001 events\)\n/)
  })
})
