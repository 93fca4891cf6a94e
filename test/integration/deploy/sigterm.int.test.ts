import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect } from '../../../cli/pipeline.ts'
import { clf } from '../../helpers/access-log.ts'
import { canConnect, freePort } from '../../helpers/net.ts'
import { createKey } from '../../../lib/apikey.ts'
import { eventId } from '../../../lib/ecs.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { topicName } from '../../../lib/topics.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function line (n: number): string {
  const s = String(n % 60).padStart(2, '0')
  return `2026-11-28T05:20:${s}.000000+00:00 backend-4 sshd[${1000 + (n % 5000)}]: Accepted publickey for sig${n} from 192.0.2.${n % 250 + 1} port ${20000 + (n % 40000)} ssh2: ED25519 SHA256:c2lndGVybXRlc3Q${n}\n`
}

interface Exit { code: number | null, signal: NodeJS.Signals | null, ms: number, stderr: string }

/** `auditline <command>` as a child process, the way an init system runs it. */
function spawnStage (command: string, cfgFile: string): { child: ChildProcess, stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', command, '--config', cfgFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (c: Buffer) => { err += c.toString('utf8') })
  return { child, stderr: () => err }
}

/** Sends SIGTERM and measures how long the stage takes to exit (SIGKILL after 20 s, so a hang fails the test instead of blocking it). */
async function terminate (p: { child: ChildProcess, stderr: () => string }): Promise<Exit> {
  const t0 = Date.now()
  const exited = new Promise<Exit>(resolve => p.child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0, stderr: p.stderr() })))
  p.child.kill('SIGTERM')
  const guard = setTimeout(() => p.child.kill('SIGKILL'), 20_000)
  try { return await exited } finally { clearTimeout(guard) }
}

describe('SIGTERM under load: every stage exits within 10 s with everything committed', function () {
  this.timeout(240_000)
  const N = 20_000
  let dir: string
  const children: ChildProcess[] = []
  let topicPrefix: string
  let indexPrefix: string
  let cfgFile: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sigterm-'))
    ;({ topicPrefix, indexPrefix } = uniquePrefix())
    cfgFile = join(dir, 'auditline.yaml')
    await writeFile(cfgFile, stringify({
      log: { level: 'warn' },
      metrics: { port: -1 },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'cp'), host: 'backend-4', pollMs: 20, batchLines: 500, sources: [{ name: 'auth', type: 'sshd', paths: [join(dir, 'auth.log')] }] },
      indexer: { groupId: `${topicPrefix}indexer`, bulkSize: 1000 },
      anonymizer: { groupId: `${topicPrefix}anon` },
      stats: { groupId: `${topicPrefix}stats` }
    }))
    await init(loadAppConfig(cfgFile, {}), { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() })
  })
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
  })

  const checkpointOffset = async (): Promise<number> => {
    try {
      const cp = JSON.parse(await readFile(join(dir, 'cp', 'auth.checkpoint.json'), 'utf8')) as { files: Record<string, { offset: number }> }
      return Object.values(cp.files).reduce((a, f) => a + f.offset, 0)
    } catch { return 0 }
  }

  it('collect: exits 0 within 10 s mid-stream; after a restart the checkpoint reaches the file size and every line is in Kafka once', async () => {
    const authLog = join(dir, 'auth.log')
    writeFileSync(authLog, '')
    let written = 0
    const writer = setInterval(() => {
      const upto = Math.min(N, written + 300)
      let chunk = ''
      for (; written < upto; written++) chunk += line(written)
      appendFileSync(authLog, chunk)
      if (written >= N) clearInterval(writer)
    }, 10)
    try {
      let p = spawnStage('collect', cfgFile)
      children.push(p.child)
      await waitFor('the collector to commit part of the stream', async () => (await checkpointOffset()) > 0 ? true : undefined, 60_000, 20)
        .catch((err: Error) => { throw new Error(`${err.message}\ncollector stderr: ${p.stderr()}`) })
      const first = await terminate(p)
      const atStop = await checkpointOffset()
      const sizeAtStop = (await stat(authLog)).size
      assert.equal(first.code, 0, `exit code 0 (got ${String(first.code)} / ${String(first.signal)}): ${first.stderr}`)
      assert.ok(first.ms < 10_000, `exited in ${first.ms} ms`)
      assert.ok(atStop > 0, 'the checkpoint was committed before exit')

      p = spawnStage('collect', cfgFile)
      children.push(p.child)
      await waitFor('the writer to finish', async () => written >= N ? true : undefined, 60_000)
      const size = (await stat(authLog)).size
      await waitFor('the restarted collector to commit the whole file', async () => (await checkpointOffset()) === size ? true : undefined, 90_000, 100)
      const second = await terminate(p)
      assert.equal(second.code, 0, second.stderr)
      assert.ok(second.ms < 10_000, `exited in ${second.ms} ms`)
      assert.equal(await checkpointOffset(), size)

      const msgs = values<AuditEvent>(await consumeUntil([topicName(topicPrefix, 'sshd')], all => all.length >= N, 60_000))
      const ids = new Set(msgs.map(e => e.event.id))
      assert.equal(ids.size, N, 'every line is in Kafka')
      assert.equal(msgs.length, N, 'a graceful stop replays nothing: no duplicates')
      process.stdout.write(`      (collector: SIGTERM at checkpoint ${atStop} of ${sizeAtStop} bytes written, exit in ${first.ms} ms; restart exit in ${second.ms} ms; ${msgs.length} messages for ${N} lines, 0 lost, ${msgs.length - ids.size} duplicates)\n`)
    } finally {
      clearInterval(writer)
    }
  })

  it('index: exits 0 within 10 s mid-stream with its offsets committed; after a restart the index holds exactly N', async () => {
    const count = async (): Promise<number> => {
      await fetch(`${stack().esUrl}/${indexPrefix}-*/_refresh`, { method: 'POST' })
      const res = await fetch(`${stack().esUrl}/${indexPrefix}-*/_count`)
      return (await res.json() as { count?: number }).count ?? 0
    }
    const topic = topicName(topicPrefix, 'sshd')
    const admin = new Kafka({ clientId: 'sigterm-test', brokers: stack().brokers, logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      const committed = async (): Promise<number> => {
        const parts = (await admin.fetchOffsets({ groupId: `${topicPrefix}indexer`, topics: [topic] }))[0]?.partitions ?? []
        return parts.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0)
      }
      const end = (await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high), 0)
      assert.equal(end, N)

      let p = spawnStage('index', cfgFile)
      children.push(p.child)
      await waitFor('the indexer to index part of the stream', async () => (await count()) > 0 ? true : undefined, 60_000, 50)
        .catch((err: Error) => { throw new Error(`${err.message}\nindexer stderr: ${p.stderr()}`) })
      const first = await terminate(p)
      const atStop = await count()
      const offsetsAtStop = await committed()
      assert.equal(first.code, 0, `exit code 0 (got ${String(first.code)} / ${String(first.signal)}): ${first.stderr}`)
      assert.ok(first.ms < 10_000, `exited in ${first.ms} ms`)
      assert.ok(offsetsAtStop > 0, 'offsets were committed before exit')
      // Committed offsets never run ahead of what is indexed (commit after the bulk succeeded).
      assert.ok(offsetsAtStop <= atStop, `committed ${offsetsAtStop} ≤ indexed ${atStop}`)

      p = spawnStage('index', cfgFile)
      children.push(p.child)
      const total = await waitFor(`${N} documents`, async () => { const c = await count(); return c >= N ? c : undefined }, 90_000, 500)
      const committedBeforeStop = await committed()
      // The indexer commits only after sealing (indexer.seal.sliceMs, 60 s here): what the SIGTERM seals and commits is the rest.
      const second = await terminate(p)
      assert.equal(second.code, 0, second.stderr)
      assert.ok(second.ms < 10_000, `exited in ${second.ms} ms`)
      assert.equal(await count(), N, 'each event indexed exactly once')
      assert.equal(await committed(), N, `every offset committed on SIGTERM (${committedBeforeStop} before it)`)
      process.stdout.write(`      (indexer: SIGTERM with ${atStop} of ${N} indexed and ${offsetsAtStop} offsets committed, exit in ${first.ms} ms; after restart ${total} documents and ${committedBeforeStop} offsets committed before the second SIGTERM, ${N} after it (exit in ${second.ms} ms); 0 lost, 0 duplicates)\n`)
    } finally {
      await admin.disconnect()
    }
  })

  it('anonymize-stage and stats-stage: exit 0 within 10 s mid-stream; after restarts every web line is anonymized and counted once', async () => {
    const W = 6000
    const access = join(dir, 'access.log')
    const now = Date.now() - 60_000
    let lines = ''
    for (let i = 0; i < W; i++) lines += `198.51.100.${i % 250 + 1} - - [${clf(now + (i % 30) * 1000)}] "GET /p/${i % 40} HTTP/1.1" 200 ${100 + i} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"\n`
    writeFileSync(access, lines)
    // The raw topic filled by a collector in this process (its SIGTERM is the first test's).
    const webCfg = loadAppConfig(cfgFile, {}, {
      ingest: { checkpointDir: join(dir, 'cp-web'), host: 'web-4', pollMs: 20, sources: [{ name: 'shop', type: 'web-access', paths: [access], options: { vhost: 'shop.example.org' } }] }
    })
    const collect = await startCollect(webCfg, { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() })
    await collect.drained()
    await collect.close()
    const admin = new Kafka({ clientId: 'sigterm-test-web', brokers: stack().brokers, logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    const ended = async (topic: string): Promise<number> => (await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high), 0)
    /**
     * Records a stage has committed. The statistics stage commits the lowest record an open bucket still needs
     * (here the first: the day is open) and keeps the record it reached in the commit metadata (`l`).
     */
    const committed = async (groupId: string, topic: string): Promise<number> => {
      const parts = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions ?? []
      return parts.reduce((a, p) => {
        let reached = 0
        try { reached = Number((JSON.parse(p.metadata ?? '') as { l?: string }).l ?? 0) } catch {}
        return a + Math.max(0, Number(p.offset), reached)
      }, 0)
    }
    const raw = topicName(topicPrefix, 'webRaw')
    const anon = topicName(topicPrefix, 'webAnon')
    const figures: string[] = []
    try {
      assert.equal(await ended(raw), W)
      for (const [stage, groupId, from] of [['anonymize-stage', `${topicPrefix}anon`, raw], ['stats-stage', `${topicPrefix}stats`, anon]] as const) {
        let p = spawnStage(stage, cfgFile)
        children.push(p.child)
        await waitFor(`${stage} to commit part of the stream`, async () => (await committed(groupId, from)) > 0 ? true : undefined, 60_000, 20)
          .catch((err: Error) => { throw new Error(`${err.message}\n${stage} stderr: ${p.stderr()}`) })
        const first = await terminate(p)
        const atStop = await committed(groupId, from)
        assert.equal(first.code, 0, `${stage}: exit code 0 (got ${String(first.code)} / ${String(first.signal)}): ${first.stderr}`)
        assert.ok(first.ms < 10_000, `${stage} exited in ${first.ms} ms`)
        p = spawnStage(stage, cfgFile)
        children.push(p.child)
        await waitFor(`${stage} to read the whole stream`, async () => (await committed(groupId, from)) >= W ? true : undefined, 90_000, 100)
        const second = await terminate(p)
        assert.equal(second.code, 0, second.stderr)
        assert.ok(second.ms < 10_000, `${stage} exited in ${second.ms} ms`)
        figures.push(`${stage}: SIGTERM with ${atStop} of ${W} committed, exit in ${first.ms} ms; restart exit in ${second.ms} ms`)
      }
      const inTopic = await ended(anon)
      const anonymized = values<{ event: { id: string } }>(await consumeUntil([anon], all => all.length >= inTopic, 60_000))
      assert.equal(new Set(anonymized.map(r => r.event.id)).size, W, 'every raw record is anonymized')
      assert.equal(anonymized.length, W, 'graceful stops replay nothing: no duplicates')
      // The newest version of each day document (re-emits overwrite by id) counts every line once.
      const statsTopic = topicName(topicPrefix, 'stats')
      const emitted = await ended(statsTopic)
      const docs = values<{ id: string, granularity: string, hits: number }>(await consumeUntil([statsTopic], all => all.length >= emitted, 60_000))
      const latest = new Map<string, { granularity: string, hits: number }>()
      for (const d of docs) latest.set(d.id, d)
      const dayHits = [...latest.values()].filter(d => d.granularity === 'day').reduce((a, d) => a + d.hits, 0)
      assert.equal(dayHits, W, 'the day statistics count every line once')
      process.stdout.write(`      (${figures.join('; ')}; ${anonymized.length} anonymized records, ${dayHits} day hits for ${W} lines)\n`)
    } finally {
      await admin.disconnect()
    }
  })

  it('panel and serve: exit 0 within 10 s while requests arrive; every change answered 202 is in Kafka, and so is every served search', async () => {
    const panelKey = await createKey()
    const apiKey = await createKey()
    const panelPort = await freePort()
    const apiPort = await freePort()
    const httpCfg = join(dir, 'http.yaml')
    await writeFile(httpCfg, stringify({
      log: { level: 'warn' },
      metrics: { port: -1 },
      stateDir: join(dir, 'state-http'),
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      panel: { port: panelPort, stateDir: join(dir, 'panel'), clients: [{ id: panelKey.id, hash: panelKey.hash, name: 'sigterm test' }] },
      queryApi: { port: apiPort, apiKeys: [{ id: apiKey.id, hash: apiKey.hash, roles: ['security'], owner: 'sigterm-test' }] }
    }))
    const figures: string[] = []
    for (const [stage, port] of [['panel', panelPort], ['serve', apiPort]] as const) {
      const p = spawnStage(stage, httpCfg)
      children.push(p.child)
      await waitFor(`${stage} to listen`, async () => await canConnect('127.0.0.1', port) ? true : undefined, 60_000, 100)
        .catch((err: Error) => { throw new Error(`${err.message}\n${stage} stderr: ${p.stderr()}`) })
      const accepted: string[] = []
      let refused = 0
      let firstRefusal = ''
      const run = { stopped: false }
      // Four clients in a loop until the server is gone; what was answered 2xx must be durable.
      const request = async (n: number): Promise<void> => {
        const res = stage === 'panel'
          ? await fetch(`http://127.0.0.1:${port}/v1/panel-events`, {
            method: 'POST',
            headers: { authorization: `ApiKey ${panelKey.key}`, 'content-type': 'application/json' },
            body: JSON.stringify({ id: `sig-${n}`, timestamp: new Date().toISOString(), actor: { kind: 'customer', id: 'c-1' }, customer: 'cust-1', object: { type: 'mailbox', id: `m${n}@example.org` }, action: 'update', changed_fields: ['quota'] })
          })
          : await fetch(`http://127.0.0.1:${port}/v1/events?size=1&reason=sigterm+test+${n}`, { headers: { authorization: `ApiKey ${apiKey.key}` } })
        const body = await res.text()
        if (res.status >= 200 && res.status < 300) accepted.push(stage === 'panel' ? `sig-${n}` : `sigterm test ${n}`)
        else if (refused++ === 0) firstRefusal = `${res.status} ${body}`
      }
      let next = 0
      const clients = Array.from({ length: 4 }, async () => {
        while (!run.stopped) {
          try { await request(next++) } catch { if (p.child.exitCode !== null || p.child.signalCode !== null) return }
        }
      })
      await waitFor(`${stage} to answer 50 requests`, async () => accepted.length >= 50 ? true : undefined, 60_000, 20)
        .catch((err: Error) => { run.stopped = true; throw new Error(`${err.message} (${accepted.length} accepted, first refusal: ${firstRefusal})\n${stage} stderr: ${p.stderr()}`) })
      const exit = await terminate(p)
      run.stopped = true
      await Promise.all(clients)
      assert.equal(exit.code, 0, `${stage}: exit code 0 (got ${String(exit.code)} / ${String(exit.signal)}): ${exit.stderr}`)
      assert.ok(exit.ms < 10_000, `${stage} exited in ${exit.ms} ms`)
      const topic = topicName(topicPrefix, stage === 'panel' ? 'panel' : 'api')
      const inKafka = await consumeUntil([topic], all => all.length >= accepted.length, 30_000)
      const ids = new Set(values<AuditEvent>(inKafka).map(e => stage === 'panel' ? e.event.id : (e.event.reason ?? '')))
      const expected = stage === 'panel' ? accepted.map(id => eventId('panel', panelKey.id, id)) : accepted
      const missing = expected.filter(id => !ids.has(id))
      assert.deepEqual(missing, [], `${stage}: every request answered 2xx is in ${topic}`)
      figures.push(`${stage}: ${accepted.length} answered 2xx, ${refused} refused while stopping (${firstRefusal.slice(0, 60)}), exit in ${exit.ms} ms, all ${accepted.length} in Kafka`)
    }
    process.stdout.write(`      (${figures.join('; ')})\n`)
  })
})
