import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, copyFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import { stringify } from 'yaml'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect, startIndex } from '../../../cli/pipeline.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { topicName } from '../../../lib/topics.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'
import { consumeUntil, values, type Consumed } from '../../helpers/kafka.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function line (n: number): string {
  const s = String(n % 60).padStart(2, '0')
  return `2026-11-28T04:10:${s}.000000+00:00 backend-3 sshd[${1000 + (n % 5000)}]: Accepted publickey for user${n} from 192.0.2.${n % 250 + 1} port ${20000 + (n % 40000)} ssh2: ED25519 SHA256:dGVzdGtleWZpbmdlcnByaW50${n}\n`
}

function quietCtx (): { log: ReturnType<typeof createLogger>, signal: AbortSignal, metrics: Registry } {
  return { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }
}

describe('collector durability against a real Kafka broker', function () {
  this.timeout(180_000)
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-durable-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('after kill -9 mid-stream and a restart, every line is in Kafka at least once and in the index exactly once', async () => {
    const N = 20_000
    const authLog = join(dir, 'auth.log')
    writeFileSync(authLog, '')
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const overrides = {
      log: { level: 'warn' },
      metrics: { port: -1 },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'cp'), host: 'backend-3', pollMs: 20, batchLines: 500, sources: [{ name: 'auth', type: 'sshd', paths: [authLog] }] },
      indexer: { groupId: `${topicPrefix}indexer`, bulkSize: 2000 }
    }
    const cfgFile = join(dir, 'auditline.yaml')
    await writeFile(cfgFile, stringify(overrides))
    const cfg = loadAppConfig(cfgFile, {})
    await init(cfg, quietCtx())

    const spawnCollector = (): ChildProcess => spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'collect', '--config', cfgFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
    const checkpointOffset = async (): Promise<number> => {
      try {
        const cp = JSON.parse(await readFile(join(dir, 'cp', 'auth.checkpoint.json'), 'utf8')) as { files: Record<string, { offset: number }> }
        return Object.values(cp.files).reduce((a, f) => a + f.offset, 0)
      } catch { return 0 }
    }

    // A writer that keeps appending while the collector runs and dies.
    let written = 0
    const writer = setInterval(() => {
      const upto = Math.min(N, written + 400)
      let chunk = ''
      for (; written < upto; written++) chunk += line(written)
      appendFileSync(authLog, chunk)
      if (written >= N) clearInterval(writer)
    }, 10)

    let child = spawnCollector()
    await waitFor('the collector to have committed part of the stream', async () => (await checkpointOffset()) > 0 ? true : undefined, 60_000, 20)
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    const offsetAtKill = await checkpointOffset()

    child = spawnCollector()
    await waitFor('the writer to finish', async () => written >= N ? true : undefined, 60_000)
    const size = (await stat(authLog)).size
    await waitFor('the restarted collector to commit the whole file', async () => (await checkpointOffset()) === size ? true : undefined, 90_000, 100)
    child.kill('SIGTERM')
    await new Promise(resolve => child.once('exit', resolve))
    assert.ok(offsetAtKill > 0 && offsetAtKill < size, `the kill happened mid-stream (checkpoint ${offsetAtKill} of ${size} bytes)`)

    const topic = topicName(topicPrefix, 'sshd')
    const msgs = values<AuditEvent>(await consumeUntil([topic], distinctIdsReach(N), 60_000))
    const ids = uniqueIds(msgs)
    assert.equal(ids, N, 'every line produced an event (at least once)')
    const seqs = new Set(msgs.map(e => e.event.sequence))
    assert.equal(seqs.size, N)
    assert.equal(Math.min(...seqs), 0)
    assert.equal(Math.max(...seqs), N - 1, 'sequence numbers have no gap')
    const byId = new Map<string, string>()
    for (const e of msgs) {
      const prev = byId.get(e.event.id)
      if (prev !== undefined) assert.equal(prev, e.event.hash, 'a replayed line yields the identical event')
      byId.set(e.event.id, e.event.hash ?? '')
    }

    const indexer = await startIndex(cfg, quietCtx())
    try {
      const count = await waitFor(`${N} documents in the index`, async () => {
        await fetch(`${stack().esUrl}/${indexPrefix}-*/_refresh`, { method: 'POST' })
        const res = await fetch(`${stack().esUrl}/${indexPrefix}-*/_count`)
        const c = (await res.json() as { count?: number }).count ?? 0
        return c >= N ? c : undefined
      }, 90_000, 1000)
      assert.equal(count, N, 'the index holds each event exactly once')
      process.stdout.write(`      (${msgs.length} messages in Kafka for ${N} lines: ${msgs.length - N} replayed after kill -9; ${count} documents indexed)\n`)
    } finally {
      await indexer.close()
    }
  })

  it('loses nothing across rotation by rename and by copytruncate while lines are being written', async () => {
    const N = 6000
    const authLog = join(dir, 'auth.log')
    writeFileSync(authLog, '')
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'cp'), host: 'backend-3', pollMs: 20, rotatedIdleMs: 300, batchLines: 200, sources: [{ name: 'auth', type: 'sshd', paths: [authLog] }] }
    })
    await init(cfg, quietCtx())
    const collector = await startCollect(cfg, quietCtx())
    try {
      let n = 0
      await new Promise<void>(resolve => {
        const t = setInterval(() => {
          for (let i = 0; i < 100 && n < N; i++, n++) appendFileSync(authLog, line(n))
          if (n === 2000) { renameSync(authLog, `${authLog}.1`); appendFileSync(`${authLog}.1`, line(n++)); writeFileSync(authLog, '') }
          if (n >= 4000 && n < 4100) { copyFileSync(authLog, `${authLog}.2`); truncateSync(authLog, 0); for (let i = 0; i < 150; i++) appendFileSync(authLog, line(n++)) }
          if (n >= N) { clearInterval(t); resolve() }
        }, 5)
      })
      await collector.drained()
    } finally {
      await collector.close()
    }
    const msgs = values<AuditEvent>(await consumeUntil([topicName(topicPrefix, 'sshd')], distinctIdsReach(N), 60_000))
    const users = new Set(msgs.map(e => e.user?.name))
    const missing = []
    for (let i = 0; i < N; i++) if (!users.has(`user${i}`)) missing.push(i)
    assert.deepEqual(missing, [], 'no line lost across rotations')
    assert.equal(uniqueIds(msgs), N)
  })
})

/** A `consumeUntil` predicate that is true once `n` distinct event ids were seen (incremental: O(messages)). */
function distinctIdsReach (n: number): (all: Consumed[]) => boolean {
  const seen = new Set<string>()
  let i = 0
  return all => {
    for (; i < all.length; i++) seen.add((JSON.parse(all[i]?.message.value?.toString() ?? '{}') as AuditEvent).event.id)
    return seen.size >= n
  }
}

function uniqueIds (events: AuditEvent[]): number {
  return new Set(events.map(e => e.event.id)).size
}
