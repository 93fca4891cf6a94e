import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Value } from '@sinclair/typebox/value'
import { createDemoStreams, type DemoStream } from '../../../ingest/demo/generate.ts'
import { startDemo } from '../../../ingest/demo/run.ts'
import { SourceConfigSchema } from '../../../ingest/config.ts'
import { parseFile, type ParseSummary } from '../../../cli/parse-file.ts'
import { createLogger } from '../../../lib/log.ts'
import { isAuditError } from '../../../lib/errors.ts'

const quiet = createLogger({ level: 'silent' })
const T0 = Date.parse('2026-11-29T08:00:00.000Z')

/** At least `n` lines of a stream, asked for every 700 ms from T0. */
function generate (s: DemoStream, n: number): string[] {
  const lines: string[] = []
  for (let t = T0; lines.length < n; t += 700) lines.push(...s.next(new Date(t)))
  return lines
}

interface Parsed { summary: ParseSummary, events: Array<Record<string, any>>, dead: string[] }

/** A file through the collector's own line handling for the source entry (tailer, parser, finalize, schema). */
async function parse (file: string, source: { type: string, format?: string | undefined, options?: Record<string, unknown> | undefined }): Promise<Parsed> {
  const events: Array<Record<string, any>> = []
  const dead: string[] = []
  const summary = await parseFile(file, source.type, source.format, 'demo-host', { event: e => events.push(e), dead: d => dead.push(d.reason) }, source.options ?? {})
  return { summary, events, dead }
}

async function sizes (dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const f of await readdir(dir)) out[f] = (await stat(join(dir, f))).size
  return out
}

const LINES = 1500

describe('demo generator', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-demo-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  describe('lines', () => {
    const parsed = new Map<string, Parsed>()
    let tmp: string

    before(async function () {
      // 12,000 lines through finalize (hash, schema check): a few seconds.
      this.timeout(60_000)
      tmp = await mkdtemp(join(tmpdir(), 'auditline-demo-lines-'))
      for (const s of createDemoStreams(4711)) {
        const file = join(tmp, s.file)
        await writeFile(file, generate(s, LINES).join('\n') + '\n')
        parsed.set(s.source.name, await parse(file, s.source))
      }
    })
    after(async () => { await rm(tmp, { recursive: true, force: true }) })

    it('writes lines every real parser reads: no dead letter in 1,500 lines of any source, events from each', () => {
      assert.equal(parsed.size, 8)
      for (const [name, p] of parsed) {
        assert.ok(p.summary.lines >= LINES, name)
        assert.deepEqual(p.dead, [], `${name}: ${p.dead.slice(0, 3).join('; ')}`)
        assert.ok(p.summary.events > 0, `${name} yields no events`)
      }
    })

    it('covers every source type the collectors have a demo for', () => {
      const types = new Set(createDemoStreams(1).map(s => s.source.type))
      assert.deepEqual([...types].sort(), ['mariadb-audit', 'postgresql', 'pure-ftpd', 'sshd', 'vsftpd', 'web-access'])
    })

    it('sshd yields successful and failed logins, sessions and sudo', () => {
      const ev = (parsed.get('demo-sshd') as Parsed).events
      const count = (action: string, outcome?: string): number => ev.filter(e => e.event.action === action && (outcome === undefined || e.event.outcome === outcome)).length
      assert.ok(count('ssh_login', 'success') > 0)
      assert.ok(count('ssh_login', 'failure') > 0)
      assert.ok(count('ssh_invalid_user') > 0)
      assert.ok(count('ssh_login_attempts_exceeded') > 0)
      assert.ok(count('ssh_session_open') > 0)
      assert.ok(count('ssh_session_close') > 0)
      assert.ok(count('sudo_command') > 0)
      assert.ok(ev.filter(e => e.event.action === 'ssh_login' && e.event.outcome === 'success').every(e => /^(10\.|192\.0\.2\.|2001:db8:)/.test(e.source.ip)))
    })

    it('FTP sources yield logins, uploads, deletions and failures', () => {
      for (const name of ['demo-vsftpd', 'demo-pure-ftpd']) {
        const actions = new Set((parsed.get(name) as Parsed).events.map(e => `${e.event.action as string}/${e.event.outcome as string}`))
        for (const a of ['ftp_login/success', 'ftp_login/failure', 'ftp_upload/success', 'ftp_download/success', 'ftp_delete/success', 'ftp_delete/failure', 'ftp_mkdir/success', 'ftp_rename/success']) {
          assert.ok(actions.has(a), `${name}: no ${a}`)
        }
      }
    })

    it('database sources yield connects, failed logins and created and dropped databases and users', () => {
      const mariadb = new Set((parsed.get('demo-mariadb') as Parsed).events.map(e => `${e.event.action as string}/${e.event.outcome as string}`))
      for (const a of ['db_connect/success', 'db_connect/failure', 'db_create_database/success', 'db_drop_database/success', 'db_create_user/success', 'db_grant/success']) assert.ok(mariadb.has(a), `mariadb: no ${a}`)
      const pg = new Set((parsed.get('demo-postgresql') as Parsed).events.map(e => `${e.event.action as string}/${e.event.outcome as string}`))
      for (const a of ['db_connect/success', 'db_connect/failure', 'db_disconnect/success', 'db_create_database/unknown', 'db_drop_database/unknown', 'db_create_role/unknown', 'db_create_database/failure']) assert.ok(pg.has(a), `postgresql: no ${a}`)
    })

    it('never writes the password of a CREATE ROLE into an event', () => {
      const statements = (parsed.get('demo-postgresql') as Parsed).events.filter(e => e.event.action === 'db_create_role').map(e => e.db.statement as string)
      assert.ok(statements.length > 0)
      assert.ok(statements.every(s => !/PASSWORD '[A-Za-z0-9]{16}'/.test(s)), statements[0])
    })

    it('web sources yield three sites, IPv4 and IPv6 visitors, bots, assets and 2xx to 5xx', () => {
      const web = [...parsed].filter(([name]) => name.startsWith('demo-web-')).flatMap(([, p]) => p.events)
      assert.equal(new Set(web.map(r => r.url.domain)).size, 3)
      assert.ok(web.some(r => r.source.ip.includes(':')))
      assert.ok(web.some(r => !(r.source.ip as string).includes(':')))
      assert.ok(web.every(r => /^(198\.51\.100\.|203\.0\.113\.|2001:db8:)/.test(r.source.ip)), 'a visitor outside the documentation ranges')
      assert.ok(web.some(r => /bot/i.test(r.user_agent?.original ?? '')))
      assert.ok(web.some(r => /\.(css|js|jpg|webp|png)$/.test(r.url.path)))
      assert.ok(web.some(r => r.http.request.referrer !== undefined))
      for (const c of [2, 3, 4, 5]) assert.ok(web.some(r => Math.floor(r.http.response.status_code / 100) === c), `no ${c}xx`)
    })
  })

  it('gives the same lines for the same seed and clock, other lines for another seed', () => {
    const run = (seed: number): string[] => createDemoStreams(seed).flatMap(s => generate(s, 300))
    assert.deepEqual(run(42), run(42))
    assert.notDeepEqual(run(42), run(43))
  })

  it('backfills the last minutes, web lines only from the start of the UTC day, and returns sources that read the files', async () => {
    const now = new Date('2026-11-29T00:40:00.000Z')
    const demo = await startDemo({ dir, seed: 7, backfillMinutes: 60, linesPerSecond: 2, now: () => now, log: quiet })
    await demo.close()
    assert.equal(demo.sources.length, 8)
    const from = now.getTime() - 60 * 60_000
    const midnight = Date.parse('2026-11-29T00:00:00.000Z')
    for (const source of demo.sources) {
      assert.ok(Value.Check(SourceConfigSchema, source), JSON.stringify(source))
      const p = await parse(source.paths[0] as string, source)
      assert.deepEqual(p.dead, [], source.name)
      assert.ok(p.summary.events > 0, `${source.name}: nothing backfilled`)
      const times = p.events.map(e => Date.parse(e['@timestamp']))
      const earliest = source.type === 'web-access' ? midnight : from
      assert.ok(times.every(t => t >= earliest && t <= now.getTime()), `${source.name}: ${new Date(Math.min(...times)).toISOString()} … ${new Date(Math.max(...times)).toISOString()}`)
      // Spread over the window, not bunched at one end.
      assert.ok(Math.min(...times) < earliest + 5 * 60_000 && Math.max(...times) > now.getTime() - 5 * 60_000, source.name)
    }
  })

  it('appends to the files of an earlier run without backfilling them again', async () => {
    const now = new Date('2026-11-29T12:00:00.000Z')
    await (await startDemo({ dir, seed: 1, backfillMinutes: 10, now: () => now, log: quiet })).close()
    const before = await sizes(dir)
    assert.equal(Object.keys(before).length, 8)
    await (await startDemo({ dir, seed: 2, backfillMinutes: 10, now: () => new Date(now.getTime() + 60_000), log: quiet })).close()
    assert.deepEqual(await sizes(dir), before)
  })

  it('appends new lines while running and none after close()', async () => {
    const demo = await startDemo({ dir, backfillMinutes: 0, linesPerSecond: 400, log: quiet })
    await sleep(700)
    await demo.close()
    const closed = await sizes(dir)
    assert.ok(Object.values(closed).some(n => n > 0), 'nothing written while running')
    await sleep(700)
    assert.deepEqual(await sizes(dir), closed)
    const p = await parse(demo.sources[0]?.paths[0] as string, demo.sources[0] as Parameters<typeof parse>[1])
    assert.deepEqual(p.dead, [])
    assert.ok(p.events.every(e => Math.abs(Date.parse(e['@timestamp']) - Date.now()) < 60_000), 'live lines are dated now')
  })

  it('refuses a rate of 0 lines per second', async () => {
    await assert.rejects(startDemo({ dir, linesPerSecond: 0, log: quiet }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
  })
})
