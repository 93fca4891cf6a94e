/**
 * Evidence exports on the real Elasticsearch + Kafka (#6): sshd events from real fixture lines go through Kafka
 * and the real indexer, which seals them; the real query API (`startServe`: Kafka auditor, Elasticsearch store,
 * export jobs) builds a bundle on `POST /v1/exports`; the downloaded tar is checked by `auditline verify-export`
 * as a child process, then tampered with and checked again. The API's own audit events of the export request
 * and the download must arrive in Kafka.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@elastic/elasticsearch'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { chromium } from 'playwright-core'
import { Registry } from 'prom-client'
import type { Running } from '../../../lib/component.ts'
import { createLogger } from '../../../lib/log.ts'
import { createKey } from '../../../lib/apikey.ts'
import { sealsIndexName } from '../../../lib/seal-template.ts'
import { topicName } from '../../../lib/topics.ts'
import { readTar, writeTar } from '../../../lib/evidence.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { SealCheckpoint } from '../../../lib/seal.ts'
import { loadAppConfig, type AppConfig } from '../../../cli/config.ts'
import { init, startIndex, startServe } from '../../../cli/pipeline.ts'
import { writeKeyPair } from '../../../cli/verify.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { fixtureEvents } from '../../helpers/audit-events.ts'

const ROOT = new URL('../../../', import.meta.url).pathname
const CHROMIUM = '/usr/bin/chromium'
const OUT = 'test-output/query-api'
const log = createLogger({ level: 'silent' })
const ctx = (): { log: typeof log, signal: AbortSignal, metrics: Registry } => ({ log, signal: new AbortController().signal, metrics: new Registry() })

interface CliResult { code: number, stdout: string, stderr: string }

/** `auditline <args>` as a child process, configured through `vars` (AUDITLINE_*) only. */
function cli (args: string[], vars: Record<string, string> = {}): Promise<CliResult> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AUDITLINE_') && v !== undefined) env[k] = v
  Object.assign(env, vars)
  return new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: ROOT, env }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

/** `auditline verify-export` as a child process: no configuration, no server, no index. */
async function verifyExport (args: string[]): Promise<CliResult> {
  return await cli(['verify-export', ...args])
}

describe('query API: evidence exports on the real Elasticsearch and Kafka, verified offline', function () {
  this.timeout(120_000)
  let dir: string
  let es: Client
  let producer: Producer
  let keys: { privateFile: string, publicFile: string, keyId: string }
  let cfg: AppConfig
  let auditorKey: Awaited<ReturnType<typeof createKey>>
  let otherKey: Awaited<ReturnType<typeof createKey>>
  let securityKey: Awaited<ReturnType<typeof createKey>>
  const running: Running[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-export-'))
    keys = await writeKeyPair(join(dir, 'seal-key'))
    auditorKey = await createKey()
    otherKey = await createKey()
    securityKey = await createKey()
    const { topicPrefix, indexPrefix } = uniquePrefix()
    cfg = loadAppConfig(undefined, {}, {
      stateDir: join(dir, 'state'),
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      indexer: { groupId: `${topicPrefix}indexer`, topics: ['sshd'], seal: { sliceMs: 500, maxLeaves: 8, privateKeyFile: keys.privateFile } },
      queryApi: {
        port: 0,
        apiKeys: [
          { id: auditorKey.id, hash: auditorKey.hash, roles: ['auditor'], owner: 'dpa-auditor' },
          { id: otherKey.id, hash: otherKey.hash, roles: ['auditor'], owner: 'other-auditor' },
          { id: securityKey.id, hash: securityKey.hash, roles: ['security'], owner: 'secteam' }
        ]
      }
    }) as AppConfig
    es = new Client({ node: stack().esUrl })
    const kafka = new Kafka({ clientId: 'auditline-test', brokers: stack().brokers, logLevel: logLevel.NOTHING })
    producer = kafka.producer()
    await producer.connect()
  })

  after(async () => {
    for (const r of running.reverse()) await r.close().catch(() => {})
    await producer?.disconnect()
    const p = cfg?.elasticsearch.indexPrefix
    if (p !== undefined) await es.indices.delete({ index: `${p}-*,${sealsIndexName(p)}`, ignore_unavailable: true, allow_no_indices: true }).catch(() => {})
    await es?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('exports sealed events through POST /v1/exports; verify-export passes, and names each change, removal and addition', async () => {
    await init(cfg, ctx())
    const events = await fixtureEvents(20)
    await producer.send({ topic: topicName(cfg.kafka.topicPrefix, 'sshd'), acks: -1, messages: events.map(e => ({ key: e.auditline.stream, value: JSON.stringify(e) })) })
    running.push(await startIndex(cfg, ctx()))
    const sealsIndex = sealsIndexName(cfg.elasticsearch.indexPrefix)
    await waitFor('all 20 events sealed', async () => {
      await es.indices.refresh({ index: sealsIndex, ignore_unavailable: true })
      const res = await es.search<SealCheckpoint>({ index: sealsIndex, size: 100, ignore_unavailable: true })
      const ids = new Set(res.hits.hits.flatMap(h => h._source?.ids ?? []))
      return events.every(e => ids.has(e.event.id)) ? true : undefined
    }, 30_000, 200)
    await es.indices.refresh({ index: `${cfg.elasticsearch.indexPrefix}-*` })

    const api = await startServe(cfg, ctx())
    running.push(api)
    const call = async (path: string, key: string, init: RequestInit = {}): Promise<Response> =>
      await fetch(api.url + path, { ...init, headers: { authorization: `ApiKey ${key}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } })

    // Only auditors (and admins) export; the body must carry a case id and a reason.
    assert.equal((await call('/v1/exports', securityKey.key, { method: 'POST', body: JSON.stringify({ case_id: 'C-1', reason: 'test export' }) })).status, 403)
    const noCase = await call('/v1/exports', auditorKey.key, { method: 'POST', body: JSON.stringify({ reason: 'test export' }) })
    assert.equal(noCase.status, 400)
    assert.match(((await noCase.json()) as { message: string }).message, /case_id/)

    // The export: every event with a "session opened"-like action would do; take all events of the fixture user(s) in a range.
    const exported = events.filter((_, i) => i >= 4 && i < 16)
    const from = (exported[0] as AuditEvent)['@timestamp']
    const to = new Date(Date.parse((exported[exported.length - 1] as AuditEvent)['@timestamp']) + 1).toISOString()
    const expected = events.filter(e => e['@timestamp'] >= from && Date.parse(e['@timestamp']) < Date.parse(to))
    const started = await call('/v1/exports', auditorKey.key, { method: 'POST', body: JSON.stringify({ from, to, case_id: 'DPA-2026-17', reason: 'Request of the data protection authority' }) })
    assert.equal(started.status, 202)
    const job = await started.json() as { id: string, status: string }
    assert.ok(['queued', 'running', 'done'].includes(job.status))

    // Another auditor's key does not see the job; the bundle is not there before the job is done.
    assert.equal((await call(`/v1/exports/${job.id}`, otherKey.key)).status, 404)
    const done = await waitFor('the export job done', async () => {
      const s = await (await call(`/v1/exports/${job.id}`, auditorKey.key)).json() as { status: string, progress: { phase: string, done: number, total: number }, counts?: { events: number, checkpoints: number }, error?: unknown }
      if (s.status === 'failed') throw new Error(`export failed: ${JSON.stringify(s.error)}`)
      return s.status === 'done' ? s : undefined
    }, 30_000, 100)
    assert.equal(done.counts?.events, expected.length)
    assert.deepEqual(done.progress, { phase: 'done', done: expected.length, total: expected.length })

    const dl = await call(`/v1/exports/${job.id}/bundle`, auditorKey.key)
    assert.equal(dl.status, 200)
    assert.equal(dl.headers.get('content-type'), 'application/x-tar')
    const tar = Buffer.from(await dl.arrayBuffer())
    const tarFile = join(dir, 'bundle.tar')
    await writeFile(tarFile, tar)

    const files = readTar(tar)
    const lines = (files.get('events.ndjson') as Buffer).toString().trim().split('\n')
    assert.deepEqual(lines.map(l => (JSON.parse(l) as AuditEvent).event.id).sort(), expected.map(e => e.event.id).sort())
    // Selective disclosure: no id of an event outside the export appears in any file.
    const all = [...files.values()].map(b => b.toString()).join('\n')
    for (const e of events.filter(x => !expected.includes(x))) assert.ok(!all.includes(e.event.id), `${e.event.id} leaked into the bundle`)

    const ok = await verifyExport([tarFile, '--public-key', keys.publicFile])
    assert.equal(ok.code, 0, ok.stdout + ok.stderr)
    assert.match(ok.stdout, new RegExp(`^OK ${expected.length} events, \\d+ signed root statements`))

    // Tampering: one byte of one event, a removed line, an added line (manifest left as it was).
    const tamperedTar = async (name: string, f: (ls: string[]) => string[]): Promise<string> => {
      const b = new Map(files)
      b.set('events.ndjson', Buffer.from(f(lines.slice()).join('\n') + '\n'))
      const file = join(dir, name)
      await writeFile(file, writeTar('evidence', b, new Date()))
      return file
    }
    const victim = JSON.parse(lines[2] as string) as AuditEvent
    const changed = await verifyExport([await tamperedTar('changed.tar', ls => { ls[2] = (ls[2] as string).replace('"backend-1"', '"backend-2"'); return ls }), '--public-key', keys.publicFile])
    assert.equal(changed.code, 1)
    assert.match(changed.stdout, new RegExp(`FAIL events\\.ndjson line 3: event ${victim.event.id} changed \\(hash [0-9a-f]{64}, sealed ${victim.event.hash as string}\\)`))
    assert.match(changed.stderr, /AUD_ERR_EXPORT_VERIFY/)

    const removed = await verifyExport([await tamperedTar('removed.tar', ls => ls.filter((_, i) => i !== 2)), '--public-key', keys.publicFile])
    assert.equal(removed.code, 1)
    assert.match(removed.stdout, new RegExp(`FAIL line missing: event ${victim.event.id} listed in proofs\\.ndjson \\(line \\d+\\) but not in events\\.ndjson`))

    const outsider = events.find(e => !expected.includes(e)) as AuditEvent
    const added = await verifyExport([await tamperedTar('added.tar', ls => [...ls, JSON.stringify(outsider)]), '--public-key', keys.publicFile])
    assert.equal(added.code, 1)
    assert.match(added.stdout, new RegExp(`FAIL events\\.ndjson extra line ${lines.length + 1}: event ${outsider.event.id} has no proof`))

    // The export request and the download were audited through Kafka like every other event.
    const audit = await consumeUntil([topicName(cfg.kafka.topicPrefix, 'api')], all => values<AuditEvent>(all).filter(e => e.event.action === 'api_export').length >= 2, 30_000)
    const exportsAudited = values<AuditEvent & { api: { route: string } }>(audit).filter(e => e.event.action === 'api_export')
    assert.deepEqual(exportsAudited.map(e => e.api.route).sort(), ['/v1/exports', '/v1/exports/:id/bundle'])
    assert.ok(exportsAudited.every(e => e.user?.name === 'dpa-auditor'))

    // The same with `auditline export` (no HTTP server): plain progress lines on a non-terminal stderr, a directory.
    const outDir = join(dir, 'cli-bundle')
    const exported2 = await cli(['export', '--case', 'DPA-2026-17', '--reason', 'CLI export', '--from', from, '--to', to, '--out', outDir], {
      AUDITLINE_ELASTICSEARCH__URL: cfg.elasticsearch.url,
      AUDITLINE_ELASTICSEARCH__INDEX_PREFIX: cfg.elasticsearch.indexPrefix,
      AUDITLINE_INDEXER__SEAL__PRIVATE_KEY_FILE: keys.privateFile
    })
    assert.equal(exported2.code, 0, exported2.stderr)
    assert.match(exported2.stdout, new RegExp(`: ${expected.length} events`))
    assert.match(exported2.stderr, /^export: events 100% \(\d+\/\d+ events\)$/m)
    const cliOk = await verifyExport([outDir, '--public-key', keys.publicFile])
    assert.equal(cliOk.code, 0, cliOk.stdout + cliOk.stderr)
    await writeFile(join(outDir, 'events.csv'), 'forged\r\n')
    const cliBad = await verifyExport([outDir, '--public-key', keys.publicFile])
    assert.equal(cliBad.code, 1)
    assert.match(cliBad.stdout, /FAIL events\.csv: changed \(sha256/)

    // The same through the web UI in headless Chromium: start, progress, download; the download verifies.
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true })
      page.setDefaultTimeout(20_000)
      const problems: string[] = []
      page.on('pageerror', e => { problems.push(String(e)) })
      page.on('console', m => { if (m.type() === 'error') problems.push(m.text()) })
      await page.goto(`${api.url}/#/exports`)
      await page.fill('#key', auditorKey.key)
      await page.click('#key-form button')
      await page.fill('#export-form input[name="case_id"]', 'DPA-2026-18')
      await page.fill('#export-form input[name="reason"]', 'Export through the web UI')
      await page.fill('#export-form input[name="host.name"]', 'backend-1')
      await page.click('#export-form button.primary')
      await page.waitForSelector('#export-download:not([hidden])')
      assert.match(await page.textContent('#export-download') ?? '', /Download bundle \(20 events\)/)
      assert.equal(await page.getAttribute('#export-progress', 'value'), '20')
      await page.screenshot({ path: `${OUT}/export-done.png` })
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-download')])
      const uiTar = join(dir, 'ui-bundle.tar')
      await download.saveAs(uiTar)
      const uiOk = await verifyExport([uiTar, '--public-key', keys.publicFile])
      assert.equal(uiOk.code, 0, uiOk.stdout + uiOk.stderr)
      assert.match(uiOk.stdout, /^OK 20 events/)
      assert.deepEqual(problems, [])
    } finally {
      await browser.close()
    }
  })
})
