import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../../helpers/stack.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Every process below `pid` (from ps): what a command started, however deep. */
function descendants (pid: number): Array<{ pid: number, comm: string, args: string }> {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm=,args='], { encoding: 'utf8' }).split('\n').flatMap(l => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(l)
    return m === null ? [] : [{ pid: Number(m[1]), ppid: Number(m[2]), comm: m[3] as string, args: m[4] as string }]
  })
  const out: Array<{ pid: number, comm: string, args: string }> = []
  const walk = (p: number): void => { for (const r of rows) if (r.ppid === p) { out.push(r); walk(r.pid) } }
  walk(pid)
  return out
}

describe('embedded mode: npm start on a fresh state directory', function () {
  this.timeout(90_000)
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-smoke-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('serves the UI within 30 s with events flowing, and starts no Java, Kafka or Elasticsearch process', async () => {
    const t0 = Date.now()
    // The README's command, with state in a temp dir and a free port (8080 may be taken on a shared machine).
    const child = spawn('npm', ['start'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, AUDITLINE_STATE_DIR: dir, AUDITLINE_INGEST__CHECKPOINT_DIR: join(dir, 'checkpoints'), AUDITLINE_QUERY_API__PORT: '0', AUDITLINE_METRICS__PORT: '-1', AUDITLINE_LOG__LEVEL: 'warn' }
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    try {
      const { url, key } = await waitFor('npm start to print the UI address and the API key', async () => {
        const url = /Web UI: (http:\/\/\S+?)\/\n/.exec(stdout)?.[1]
        const key = /API key \(shown once[^)]*\): (\S+)/.exec(stdout)?.[1]
        return url !== undefined && key !== undefined ? { url, key } : undefined
      }, 30_000, 100)
      const ui = await fetch(`${url}/`)
      assert.equal(ui.status, 200)
      assert.match(await ui.text(), /<html/i)
      const total = await waitFor('events searchable through the API', async () => {
        const res = await fetch(`${url}/v1/events?size=5&reason=smoke+test`, { headers: { authorization: `ApiKey ${key}` } })
        if (res.status !== 200) return undefined
        const body = await res.json() as { total: number }
        return body.total > 0 ? body.total : undefined
      }, Math.max(1000, 30_000 - (Date.now() - t0)), 250)
      const elapsed = Date.now() - t0
      assert.ok(elapsed <= 30_000, `UI and events within 30 s (took ${elapsed} ms)`)
      const procs = descendants(child.pid as number)
      assert.ok(procs.length > 0, 'the process tree was read')
      const servers = procs.filter(p => /java|kafka|elasticsearch/i.test(p.comm + ' ' + p.args))
      assert.deepEqual(servers, [], 'no Java, Kafka or Elasticsearch process was started')
      // Events of every audit class the demo writes arrive, not only the first one.
      const classes = await waitFor('ssh, ftp and db events', async () => {
        const seen = []
        for (const c of ['ssh', 'ftp', 'db']) {
          const r = await fetch(`${url}/v1/events?size=1&reason=smoke+test&class=${c}`, { headers: { authorization: `ApiKey ${key}` } })
          if (r.status === 200 && (await r.json() as { total: number }).total > 0) seen.push(c)
        }
        return seen.length === 3 ? seen : undefined
      }, 30_000, 500)
      assert.deepEqual(classes, ['ssh', 'ftp', 'db'])
      process.stdout.write(`      (UI and ${total} events after ${elapsed} ms; ${procs.length} processes, none a server)\n`)
    } catch (err) {
      process.stdout.write(`--- npm start stdout ---\n${stdout.slice(-3000)}\n--- stderr ---\n${stderr.slice(-3000)}\n`)
      throw err
    } finally {
      try { process.kill(-(child.pid as number), 'SIGTERM') } catch {}
      const exited = await Promise.race([new Promise(resolve => child.once('exit', () => { resolve(true) })), new Promise(resolve => setTimeout(() => { resolve(false) }, 15_000))])
      if (exited !== true) try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
    }
  })
})
