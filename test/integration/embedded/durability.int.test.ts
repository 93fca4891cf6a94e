import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { stringify } from 'yaml'
import type { AuditEvent } from '../../../lib/ecs.ts'
import type { StatsDocument } from '../../../anonymizer/stats/record.ts'
import { waitFor } from '../../helpers/stack.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function sshLine (n: number): string {
  const s = String(n % 60).padStart(2, '0')
  return `2026-11-28T04:10:${s}.000000+00:00 backend-3 sshd[${1000 + (n % 5000)}]: Accepted publickey for user${n} from 192.0.2.${n % 250 + 1} port ${20000 + (n % 40000)} ssh2: ED25519 SHA256:dGVzdGtleWZpbmdlcnByaW50${n}\n`
}

/** nginx combined, one site per file (vhost option), visitor addresses from the documentation ranges. */
function webLine (n: number, at: Date): string {
  const t = at.toUTCString().split(' ') // Sun, 29 Nov 2026 09:50:00 GMT
  const stamp = `${t[1]}/${t[2]}/${t[3]}:${t[4]} +0000`
  return `198.51.100.${n % 200 + 1} - - [${stamp}] "GET /page/${n % 37}.html HTTP/1.1" 200 ${500 + n % 900} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"\n`
}

describe('embedded mode: durability (no Kafka, no Elasticsearch)', function () {
  this.timeout(240_000)
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-embedded-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('after kill -9 mid-stream and a restart, every line is stored exactly once, sealed, and counted once in the statistics', async () => {
    const N = 20_000
    const W = 5_000
    const authLog = join(dir, 'auth.log')
    const accessLog = join(dir, 'access.log')
    writeFileSync(authLog, '')
    writeFileSync(accessLog, '')
    const dbFile = join(dir, 'auditline.db')
    const cfgFile = join(dir, 'auditline.yaml')
    await writeFile(cfgFile, stringify({
      log: { level: 'warn' },
      stateDir: join(dir, 'state'),
      metrics: { port: -1 },
      embedded: { file: dbFile },
      queryApi: { port: 0 },
      indexer: { seal: { sliceMs: 500, privateKeyFile: join(dir, 'seal.pem') } },
      ingest: {
        checkpointDir: join(dir, 'cp'),
        host: 'backend-3',
        pollMs: 20,
        batchLines: 500,
        sources: [
          { name: 'auth', type: 'sshd', paths: [authLog] },
          { name: 'web', type: 'web-access', paths: [accessLog], options: { vhost: 'www.example.org' } }
        ]
      }
    }))
    const keygen = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'keygen', '--out', join(dir, 'seal')], { cwd: ROOT, stdio: 'ignore' })
    assert.equal(await new Promise(resolve => keygen.once('exit', resolve)), 0)

    const spawnRun = (): ChildProcess => spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'run', '--config', cfgFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
    const committed = async (): Promise<number> => {
      let sum = 0
      for (const name of ['auth', 'web']) {
        try {
          const cp = JSON.parse(await readFile(join(dir, 'cp', `${name}.checkpoint.json`), 'utf8')) as { files: Record<string, { offset: number }> }
          sum += Object.values(cp.files).reduce((a, f) => a + f.offset, 0)
        } catch {}
      }
      return sum
    }

    // Writers that keep appending while the pipeline runs, dies and restarts.
    let ssh = 0
    let web = 0
    const writer = setInterval(() => {
      let chunk = ''
      for (const upto = Math.min(N, ssh + 400); ssh < upto; ssh++) chunk += sshLine(ssh)
      if (chunk !== '') appendFileSync(authLog, chunk)
      chunk = ''
      const now = new Date(Date.now() - 30_000)
      for (const upto = Math.min(W, web + 100); web < upto; web++) chunk += webLine(web, now)
      if (chunk !== '') appendFileSync(accessLog, chunk)
      if (ssh >= N && web >= W) clearInterval(writer)
    }, 10)

    let child = spawnRun()
    await waitFor('part of the stream committed', async () => (await committed()) > 0 ? true : undefined, 60_000, 20)
    child.kill('SIGKILL')
    await new Promise(resolve => child.once('exit', resolve))
    const atKill = await committed()

    child = spawnRun()
    await waitFor('the writers to finish', async () => ssh >= N && web >= W ? true : undefined, 60_000)
    const size = (await stat(authLog)).size + (await stat(accessLog)).size
    await waitFor('the restarted pipeline to commit both files', async () => (await committed()) === size ? true : undefined, 120_000, 100)
    const t0 = Date.now()
    child.kill('SIGTERM')
    const code = await new Promise(resolve => child.once('exit', resolve))
    const stopMs = Date.now() - t0
    assert.equal(code, 0, 'SIGTERM ends the embedded pipeline cleanly')
    assert.ok(stopMs < 10_000, `stopped within 10 s (took ${stopMs} ms)`)
    assert.ok(atKill > 0 && atKill < size, `the kill happened mid-stream (checkpoints at ${atKill} of ${size} bytes)`)

    const db = new Database(dbFile, { readonly: true })
    try {
      const rows = db.prepare<[], { id: string, doc: string }>("SELECT id, doc FROM events WHERE class = 'ssh'").all()
      assert.equal(rows.length, N, 'every sshd line is stored exactly once')
      const seqs = rows.map(r => (JSON.parse(r.doc) as AuditEvent).event.sequence as number).sort((a, b) => a - b)
      assert.equal(new Set(seqs).size, N)
      assert.equal(seqs[0], 0)
      assert.equal(seqs[N - 1], N - 1, 'sequence numbers have no gap')
      const dead = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM deadletters').get()?.n
      assert.equal(dead, 0)
      const days = db.prepare<[], { doc: string }>("SELECT doc FROM stats WHERE granularity = 'day' AND site = 'www.example.org'").all().map(r => JSON.parse(r.doc) as StatsDocument)
      assert.equal(days.reduce((a, d) => a + d.hits, 0), W, 'every web line is counted once in the day statistics')
      const raw = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM anon_log WHERE value LIKE '%198.51.100.%'").get()?.n
      assert.equal(raw, 0, 'no visitor address in the anonymized records left in the file')
      process.stdout.write(`      (killed at ${atKill} of ${size} bytes; ${rows.length} ssh events, ${days.reduce((a, d) => a + d.hits, 0)} web hits; SIGTERM stop in ${stopMs} ms)\n`)
    } finally {
      db.close()
    }

    // Everything is sealed and intact: verify exits 0.
    const verify = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'verify', '--config', cfgFile, '--public-key', join(dir, 'seal.pub.pem')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    verify.stdout?.on('data', (d: Buffer) => { out += d.toString() })
    verify.stderr?.on('data', (d: Buffer) => { out += d.toString() })
    const vcode = await new Promise(resolve => verify.once('exit', resolve))
    assert.equal(vcode, 0, `auditline verify is clean: ${out.slice(-2000)}`)
    assert.match(out, new RegExp(`"verified":\\s*${N}\\b`), 'every stored sshd event was verified against its seal')
  })
})
