/**
 * GoAccess as an oracle for the statistics stage: the same seeded combined log goes through GoAccess (Debian's
 * `goaccess` package) and through auditline's real path — web-access parser → anonymizer (one epoch key per
 * UTC day) → statistics aggregator — and the per-day counts must be equal.
 *
 * Making both sides count the same thing (GoAccess 1.7, read from its parser.c and `--help`):
 * - GoAccess's unique visitor is IP + date + user agent, and it leaves 4xx responses out of the unique count
 *   unless `--4xx-to-unique-count`; auditline's visitor id is a per-UTC-day keyed hash of IP + user agent + site
 *   over every request. So: `--4xx-to-unique-count`, one site, and `+0000` timestamps (GoAccess's date is
 *   the log's local date).
 * - `--ignore-crawlers` drops crawlers from every panel: compared with auditline's `humans.*`. Both classify
 *   the user agents in this log the same way (GoAccess's list vs anonymizer/user-agent.ts; checked below).
 * - Top pages: GoAccess's requests panel excludes static files (by extension, suffix match; with `-q` the
 *   query is stripped first) and 404s; it cannot filter by method or by other statuses. So the page run uses
 *   `--ignore-crawlers -q --http-method=no --http-protocol=no`, auditline's asset extensions as
 *   `--static-file` (which replaces GoAccess's defaults; `--no-global-config` keeps /etc/goaccess out), and
 *   `--ignore-status` for every status in the log that is not 2xx/304. The generated log answers every POST
 *   with 303, so the status filter also removes the POSTs, which auditline's pageview rule excludes by method.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseUserAgent } from '../../../anonymizer/user-agent.ts'
import { aggregateAll } from '../../../anonymizer/stats/aggregate.ts'
import { validate as validateStats } from '../../../anonymizer/stats/run.ts'
import type { StatsDocument, TopEntry } from '../../../anonymizer/stats/record.ts'
import { anonymizeLines, generateCombinedLog } from '../../helpers/access-log.ts'

const run = promisify(execFile)
const SITE = 'www.shop-example.test'
const DAYS = ['2026-03-01', '2026-03-02']
const BASE = ['--no-global-config', '--log-format=COMBINED', '--date-format=%d/%b/%Y', '--time-format=%T', '--no-progress', '--json-pretty-print']

interface GaItem { data: string, hits: { count: number }, visitors: { count: number }, bytes: { count: number } }
type GaReport = Record<string, { data: GaItem[] }> & { general: { total_requests: number, valid_requests: number, failed_requests: number } }

async function goaccess (dir: string, name: string, log: string, flags: string[]): Promise<GaReport> {
  const out = join(dir, `${name}.json`)
  await run('goaccess', [log, ...BASE, ...flags, '-o', out], { timeout: 20_000 })
  return JSON.parse(await readFile(out, 'utf8')) as GaReport
}

/** GoAccess's date key `20260301` → `2026-03-01`. */
const gaDay = (d: string): string => `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`
const byCountThenKey = (a: TopEntry, b: TopEntry): number => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

describe('statistics against GoAccess (oracle) on the same generated log', function () {
  this.timeout(60_000)
  let dir: string
  let logFile: string
  let lines: string[]
  let addresses: string[]
  let docs: StatsDocument[]
  const dayDoc = (day: string): StatsDocument => {
    const d = docs.find(x => x.granularity === 'day' && x.period.start === `${day}T00:00:00.000Z`)
    assert.ok(d !== undefined, `no day document for ${day}`)
    return d
  }

  before(async () => {
    try {
      await run('goaccess', ['--version'])
    } catch {
      throw new Error('goaccess is not installed (apt-get install goaccess; listed in .ci/apt-packages.txt)')
    }
    dir = await mkdtemp(join(tmpdir(), 'auditline-goaccess-'))
    const log = generateCombinedLog(20260301, { days: DAYS, humans: 80, site: SITE })
    lines = log.lines
    addresses = log.addresses
    logFile = join(dir, 'access.log')
    await writeFile(logFile, lines.join('\n') + '\n')

    // auditline's path: web-access parser → anonymizer (an epoch key per UTC day) → aggregator.
    const records = anonymizeLines(lines, SITE)
    docs = aggregateAll(records, validateStats({}))
  })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('generated a log of a few thousand lines over two UTC days with IPv4, IPv6, crawlers and errors', () => {
    assert.ok(lines.length > 2000 && lines.length < 8000, `${lines.length} lines`)
    assert.ok(addresses.some(a => a.includes(':')) && addresses.some(a => !a.includes(':')))
    for (const s of [' 404 ', ' 304 ', ' 301 ', ' 303 ', ' 500 ', '"HEAD ', 'Googlebot']) assert.ok(lines.some(l => l.includes(s)), s)
  })

  it('classifies the log\'s user agents as crawlers exactly where GoAccess does', async () => {
    const uas = [...new Set(lines.map(l => l.slice(l.lastIndexOf(' "') + 2, -1)))]
    const probe = join(dir, 'uas.log')
    await writeFile(probe, uas.map((ua, i) => `192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET /ua/${i} HTTP/1.1" 200 1 "-" "${ua}"`).join('\n') + '\n')
    const r = await goaccess(dir, 'crawlers', probe, ['--crawlers-only'])
    const crawlers = new Set((r.requests?.data ?? []).map(x => Number(x.data.slice(4))))
    uas.forEach((ua, i) => assert.equal(parseUserAgent(ua).device === 'bot', crawlers.has(i), ua))
    assert.ok(crawlers.size >= 4)
  })

  it('counts the same hits, unique visitors and bytes per UTC day as GoAccess (all traffic)', async () => {
    const r = await goaccess(dir, 'all', logFile, ['--4xx-to-unique-count'])
    assert.equal(r.general.failed_requests, 0)
    assert.equal(r.general.valid_requests, lines.length)
    const ga = r.visitors?.data ?? []
    assert.deepEqual(ga.map(x => gaDay(x.data)).sort(), DAYS)
    for (const x of ga) {
      const d = dayDoc(gaDay(x.data))
      assert.deepEqual({ hits: d.hits, visitors: d.visitors, bytes: d.bytes }, { hits: x.hits.count, visitors: x.visitors.count, bytes: x.bytes.count }, x.data)
    }
    // Why the flag: without it GoAccess leaves out the scanners that only got 404s.
    const plain = await goaccess(dir, 'plain', logFile, [])
    for (const x of plain.visitors?.data ?? []) assert.ok(x.visitors.count < dayDoc(gaDay(x.data)).visitors, x.data)
  })

  it('counts the same human hits and unique visitors per UTC day as GoAccess with --ignore-crawlers', async () => {
    const r = await goaccess(dir, 'humans', logFile, ['--4xx-to-unique-count', '--ignore-crawlers'])
    for (const x of r.visitors?.data ?? []) {
      const d = dayDoc(gaDay(x.data))
      assert.deepEqual(d.humans, { hits: x.hits.count, visitors: x.visitors.count }, x.data)
      assert.ok(d.bots.hits > 0)
    }
  })

  it('counts the same hits per hour of day and per status class as GoAccess', async () => {
    const r = await goaccess(dir, 'all', logFile, ['--4xx-to-unique-count'])
    const perHour = new Map<string, number>()
    for (const d of docs.filter(x => x.granularity === 'hour')) {
      const h = d.period.start.slice(11, 13)
      perHour.set(h, (perHour.get(h) ?? 0) + d.hits)
    }
    const gaHours = new Map((r.visit_time?.data ?? []).map(x => [x.data.slice(0, 2), x.hits.count]))
    assert.deepEqual(new Map([...perHour].sort()), new Map([...gaHours].sort()))
    const classes = new Map<string, number>()
    for (const d of DAYS.map(dayDoc)) for (const [k, v] of Object.entries(d.status)) if (v > 0) classes.set(k, (classes.get(k) ?? 0) + v)
    const gaClasses = new Map((r.status_codes?.data ?? []).map(x => [`${x.data[0] as string}xx`, x.hits.count]))
    assert.deepEqual(new Map([...classes].sort()), new Map([...gaClasses].sort()))
  })

  for (const day of DAYS) {
    it(`lists the same top 10 pages with the same counts for ${day} as GoAccess's requests panel`, async () => {
      const dayLines = lines.filter(l => l.includes(`[${day.slice(8, 10)}/Mar/2026:`))
      const file = join(dir, `${day}.log`)
      await writeFile(file, dayLines.join('\n') + '\n')
      const statuses = [...new Set(dayLines.map(l => Number(/" (\d{3}) /.exec(l)?.[1])))]
      const ignore = statuses.filter(s => !((s >= 200 && s < 300) || s === 304)).map(s => `--ignore-status=${s}`)
      const stat = validateStats({}).staticExtensions.map(e => `--static-file=.${e}`)
      const r = await goaccess(dir, `pages-${day}`, file, ['--ignore-crawlers', '-q', '--http-method=no', '--http-protocol=no', ...ignore, ...stat])
      const gaTop = (r.requests?.data ?? []).map(x => ({ key: x.data, count: x.hits.count })).sort(byCountThenKey).slice(0, 10)
      const ours = dayDoc(day).top.pages.slice(0, 10)
      assert.equal(gaTop.length, 10)
      assert.deepEqual(ours, gaTop)
      // GoAccess's requests panel then holds exactly the pageviews.
      assert.equal(dayDoc(day).pageviews, (r.requests?.data ?? []).reduce((n, x) => n + x.hits.count, 0))
    })
  }

  it('puts no client address of the log into any statistics document', () => {
    const text = JSON.stringify(docs)
    for (const a of addresses) assert.ok(!text.includes(a), `${a} in a statistics document`)
  })
})
