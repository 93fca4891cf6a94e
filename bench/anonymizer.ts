/**
 * Anonymizer throughput (issue #4), every contender on the same seeded access log in the same run:
 *   (a) auditline in-process: `auditline anonymize` (file → anonymizeText per line → file) and the record
 *       path (collector's parse + record + JSON, then the stage's decode, check, anonymizeRecord, encode);
 *   (b) rsyslog's mmanon (imfile → mmanon → omfile), the tool design §7 says we must beat;
 *   (c) GoAccess parsing the same file (its own parse rate; the statistics comparison is another suite's);
 *   (d) the anonymizer stage over the local Kafka against a pass-through consumer → producer.
 * Prints rates, CPU per million lines and ratios with met/not met against the issue's targets. It never
 * asserts: machines differ, and a shared CI box would make a timed assertion flaky. Head-to-head pairs run
 * alternated, best of `--rounds` (2), so that a neighbour's burst does not pick the winner.
 *
 *   npm run bench -- anonymizer [--lines 1000000] [--kafka-lines 200000] [--record-lines 200000]
 *                               [--rounds 2] [--seed 20260401] [--skip rsyslog,goaccess,kafka]
 */
import { spawn, execFileSync } from 'node:child_process'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'
import { Registry } from 'prom-client'
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs'
import { anonymizeStream } from '../cli/anonymize-file.ts'
import { Anonymizer, start as startAnonymizer, validate as validateAnonymizer } from '../anonymizer/run.ts'
import { anonymizeText, DEFAULT_SCRUB_PARAMS } from '../anonymizer/anonymize-ip/text.ts'
import { anonymizeRecord } from '../anonymizer/transform.ts'
import { createWebAccessToMessage } from '../ingest/web-access/parse.ts'
import { assertWebAccessRecord } from '../ingest/web-access/record.ts'
import type { Position } from '../ingest/common/finalize.ts'
import { createKafka, createConsumer, createProducer, ensureTopics, chunkTopicMessages } from '../lib/kafka.ts'
import { topicName } from '../lib/topics.ts'
import { createLogger } from '../lib/log.ts'
import { Rng } from '../ingest/demo/generate.ts'

// ---------------------------------------------------------------------------------------------------------
// Seeded log generator
// ---------------------------------------------------------------------------------------------------------

/** mulberry32 (the demo generator's): the same log from the same seed on every machine. */
function mulberry32 (seed: number): () => number {
  const rng = new Rng(seed)
  return () => rng.next()
}

/** Real user agents (browsers, mobile, crawlers, scripts) with a rough share of clients. */
const USER_AGENTS: Array<[number, string]> = [
  [14, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'],
  [6, 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36'],
  [5, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0'],
  [2, 'Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0'],
  [1, 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0'],
  [4, 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15'],
  [12, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1'],
  [2, 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1'],
  [12, 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36'],
  [3, 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36'],
  [5, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51'],
  [1, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 OPR/108.0.0.0'],
  [2, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1'],
  [1, 'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0'],
  [0.3, 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko'],
  [0.5, 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36'],
  [2, 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'],
  [1, 'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'],
  [1.5, 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)'],
  [1, 'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)'],
  [1, 'Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)'],
  [0.5, 'Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)'],
  [0.5, 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)'],
  [0.3, 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)'],
  [0.5, 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)'],
  [1, 'curl/7.88.1'],
  [0.3, 'Wget/1.21.3'],
  [1, 'python-requests/2.31.0'],
  [0.5, 'Go-http-client/1.1'],
  [0.2, 'Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)'],
  [0.3, 'Mozilla/5.0 zgrab/0.x'],
  [0.5, '-']
]

const V6_PREFIXES = [[0x2a02, 0x8108], [0x2003, 0xe5], [0x2a01, 0xc23], [0x2600, 0x1700], [0x2001, 0x16b8], [0x2a00, 0x20], [0x2604, 0xa880], [0x2a02, 0x908]]
const WORDS = ['shoes', 'laptop', 'garden+chair', 'rsyslog', 'privacy', 'coffee', 'bike', 'lamp', 'kafka', 'hosting', 'domain', 'mail']
const PAGES = ['about', 'contact', 'pricing', 'blog', 'faq', 'imprint', 'privacy', 'terms', 'careers', 'support']
const REFERRER_SITES = ['https://www.google.com/', 'https://www.bing.com/search?q=', 'https://duckduckgo.com/', 'https://t.co/', 'https://www.facebook.com/', 'https://news.ycombinator.com/item?id=']
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function formatV6 (w: number[]): string {
  // RFC 5952 like nginx writes them: longest run (≥ 2) of zero words as `::`.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && w[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const h = (a: number[]): string => a.map(x => x.toString(16)).join(':')
  return best < 0 ? h(w) : `${h(w.slice(0, best))}::${h(w.slice(best + bestLen))}`
}

interface Generated { lines: number, distinctClients: number, v6Lines: number, bytes: number }

/**
 * Writes `n` combined-format lines over the current UTC day: ~20 % IPv6 clients out of ~50k, a skewed
 * request count per client, one user agent per client, paths with query strings (some personal), some
 * referrers, a few addresses inside URLs and referrers, mostly 200 with 3xx/404/5xx. The day is today's so
 * that the stream stage's epoch key accepts the records (it refuses records of an epoch that is over).
 */
export async function generateLog (file: string, n: number, seed: number, day: number): Promise<Generated> {
  const rnd = mulberry32(seed)
  const int = (k: number): number => Math.floor(rnd() * k)
  const pick = <T>(a: readonly T[]): T => a[int(a.length)] as T
  const uaTotal = USER_AGENTS.reduce((s, [w]) => s + w, 0)
  const pickUa = (): string => {
    let r = rnd() * uaTotal
    for (const [w, ua] of USER_AGENTS) { r -= w; if (r < 0) return ua }
    return USER_AGENTS[0]?.[1] as string
  }
  const v4: Array<{ ip: string, ua: string }> = []
  const v6: Array<{ ip: string, ua: string }> = []
  for (let i = 0; i < 40_000; i++) {
    let a = 1 + int(223)
    while (a === 10 || a === 127) a = 1 + int(223)
    // A few clients come over a dual-stack socket and are logged IPv4-mapped, as nginx does with ipv6only=off.
    const ip = `${a}.${int(256)}.${int(256)}.${1 + int(254)}`
    v4.push({ ip: int(100) === 0 ? `::ffff:${ip}` : ip, ua: pickUa() })
  }
  for (let i = 0; i < 10_000; i++) {
    const p = pick(V6_PREFIXES)
    const w = [p[0] as number, p[1] as number, int(0x10000), int(0x10000), 0, 0, 0, 0]
    // Half SLAAC privacy addresses (four random words), half ISP-assigned ones with zero words (compressed).
    if (rnd() < 0.5) for (let k = 4; k < 8; k++) w[k] = int(0x10000)
    else { w[6] = int(3) === 0 ? 0 : int(0x100); w[7] = 1 + int(0xffff) }
    v6.push({ ip: formatV6(w), ua: pickUa() })
  }
  const seen = new Uint8Array(v4.length + v6.length)
  let v6Lines = 0
  let bytes = 0
  const out = createWriteStream(file)
  const write = async (s: string): Promise<void> => {
    bytes += Buffer.byteLength(s)
    if (!out.write(s)) await new Promise<void>(resolve => out.once('drain', resolve))
  }
  let chunk: string[] = []
  for (let i = 0; i < n; i++) {
    // Skewed: r² puts more requests on the low indexes (heavy visitors, crawlers) but still reaches every client.
    const six = rnd() < 0.2
    const pool = six ? v6 : v4
    const idx = Math.floor(pool.length * rnd() * rnd())
    const client = pool[idx] as { ip: string, ua: string }
    seen[six ? v4.length + idx : idx] = 1
    if (six) v6Lines++
    const t = new Date(day + Math.floor((i / n) * 86_400_000) + int(2000))
    const ts = `${String(t.getUTCDate()).padStart(2, '0')}/${MONTHS[t.getUTCMonth()] as string}/${t.getUTCFullYear()}:${String(t.getUTCHours()).padStart(2, '0')}:${String(t.getUTCMinutes()).padStart(2, '0')}:${String(t.getUTCSeconds()).padStart(2, '0')} +0000`
    const r = rnd()
    let method = 'GET'
    let target: string
    let status = 200
    if (r < 0.22) target = `/static/${pick(['css/main', 'js/app', 'js/vendor', 'img/logo'])}.${int(0xffffff).toString(16)}.${pick(['css', 'js', 'svg', 'png'])}`
    else if (r < 0.32) target = `/products/${int(5000)}?ref=${pick(['home', 'search', 'mail'])}&utm_source=${pick(['newsletter', 'google', 'twitter'])}&utm_medium=${pick(['cpc', 'email', 'social'])}`
    else if (r < 0.40) target = `/search?q=${pick(WORDS)}&page=${1 + int(5)}`
    else if (r < 0.50) target = `/${pick(PAGES)}`
    else if (r < 0.56) target = `/api/v1/items/${int(100_000)}?fields=name,price&session=${int(0xfffffff).toString(16)}${int(0xfffffff).toString(16)}`
    else if (r < 0.60) { method = 'POST'; target = pick(['/login', '/wp-login.php', '/api/v1/cart', '/contact']) } else if (r < 0.62) target = `/account/verify?email=user${int(10_000)}%40example.com&token=${int(0xfffffff).toString(16)}`
    else if (r < 0.64) target = `/lookup?ip=${(pick(v4)).ip.replace('::ffff:', '')}&xff=${pick(v4).ip.replace('::ffff:', '')}%2C10.${int(256)}.${int(256)}.${int(256)}`
    else if (r < 0.65) target = `/api/v1/geo/${pick(v6).ip}`
    else if (r < 0.70) target = '/favicon.ico'
    else if (r < 0.72) target = pick(['/robots.txt', '/sitemap.xml', '/feed.xml', '/ads.txt'])
    else if (r < 0.74) { target = pick(['/.env', '/wp-admin/setup-config.php', '/phpmyadmin/', '/.git/config', '/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php']); status = 404 } else if (r < 0.76) { method = 'HEAD'; target = '/' } else if (r < 0.80) target = `/blog/${2020 + int(6)}/${String(1 + int(12)).padStart(2, '0')}/${pick(WORDS).replace('+', '-')}-${int(300)}`
    else if (r < 0.84) target = `/images/${pick(['hero', 'team', 'product', 'banner'])}-${int(400)}.${pick(['jpg', 'webp'])}`
    else target = '/'
    if (status === 200) {
      const s = rnd()
      status = s < 0.83 ? 200 : s < 0.88 ? 304 : s < 0.92 ? pick([301, 302]) : s < 0.975 ? 404 : s < 0.985 ? 403 : s < 0.99 ? 206 : pick([500, 502, 503, 504])
    }
    const size = status === 304 || method === 'HEAD' ? 0 : status >= 400 ? 150 + int(400) : 200 + int(150_000)
    const rr = rnd()
    const referrer = rr < 0.45
      ? '-'
      : rr < 0.75
        ? `https://www.example.com/${pick(PAGES)}`
        : rr < 0.93
          ? `${pick(REFERRER_SITES)}${int(100_000)}`
          : rr < 0.97
            ? `http://${pick(v4).ip.replace('::ffff:', '')}:${pick([80, 8080, 8443])}/admin/`
            : `https://[${pick(v6).ip}]/`
    const user = int(500) === 0 ? pick(['alice', 'bob', 'deploy']) : '-'
    const proto = rnd() < 0.7 ? 'HTTP/1.1' : 'HTTP/2.0'
    chunk.push(`${client.ip} - ${user} [${ts}] "${method} ${target} ${proto}" ${status} ${size} "${referrer}" "${client.ua}"\n`)
    if (chunk.length === 10_000) { await write(chunk.join('')); chunk = [] }
  }
  if (chunk.length > 0) await write(chunk.join(''))
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => { if (err == null) resolve(); else reject(err) }))
  let distinct = 0
  for (const s of seen) distinct += s
  return { lines: n, distinctClients: distinct, v6Lines, bytes }
}

// ---------------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------------

interface Result {
  name: string
  lines: number
  /** Wall time in ms. */
  ms: number
  /** CPU seconds (user + system) of the process doing the work; undefined when not measurable. */
  cpu?: number
  note?: string
}

function cpuSince (start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return (d.user + d.system) / 1e6
}

async function forEachLine (file: string, limit: number, fn: (line: string) => void): Promise<number> {
  let n = 0
  for await (const line of createInterface({ input: createReadStream(file, { highWaterMark: 1 << 20 }), crlfDelay: Infinity })) {
    if (n === limit) break
    fn(line)
    n++
  }
  return n
}

const BENCH_ANON_CFG = { epochMs: 86_400_000, graceMs: 900_000, scrubQueryParams: DEFAULT_SCRUB_PARAMS }

/** `auditline anonymize FILE > OUT`, in process. */
async function runTextPath (file: string, out: string): Promise<Result> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const output = createWriteStream(out, { highWaterMark: 1 << 20 })
  const lines = await anonymizeStream(createReadStream(file, { highWaterMark: 1 << 20 }), output, BENCH_ANON_CFG)
  await new Promise<void>((resolve, reject) => output.end((err?: Error | null) => { if (err == null) resolve(); else reject(err) }))
  return { name: 'auditline anonymize (file → file)', lines, ms: performance.now() - t0, cpu: cpuSince(c0) }
}

/** anonymizeText alone over lines already in memory: the transform's own cost, without I/O. */
async function runTextInMemory (file: string, limit: number): Promise<Result | undefined> {
  if ((await stat(file)).size > 400 << 20) return undefined // V8's string limit; the file path covers it
  const text = await readFile(file, 'utf8')
  const lines = text.split('\n', limit)
  const anon = new Anonymizer(BENCH_ANON_CFG)
  const now = Date.now()
  const m = anon.mapperFor(now, now)
  if (m === undefined) return undefined
  let sink = 0
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (const l of lines) sink += anonymizeText(l, m.mapper, anon.scrub).length
  const ms = performance.now() - t0
  anon.destroy()
  return { name: 'anonymizeText only (in memory)', lines: lines.length, ms, cpu: cpuSince(c0), note: sink > 0 ? undefined : 'empty' }
}

/**
 * The record path without Kafka: the collector's last step (parse, record, schema check, JSON) and the
 * stage's per-message work (JSON, schema check, epoch mapper, anonymizeRecord, JSON).
 */
async function runRecordPath (file: string, limit: number): Promise<Result> {
  const toMessage = createWebAccessToMessage('combined', { vhost: 'www.example.com' })
  const anon = new Anonymizer(BENCH_ANON_CFG)
  const pos: Position = { host: 'bench', source: 'web', fileKey: '1:2', generation: 0, offset: 0, path: file }
  let seq = 0
  let errors = 0
  let bytes = 0
  const readAt = new Date()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const now = Date.now()
  const lines = await forEachLine(file, limit, line => {
    const r = toMessage(line, pos, seq++, readAt)
    pos.offset += line.length + 1
    if (!('message' in r)) { errors++; return }
    const rec: unknown = JSON.parse(r.message.value as string)
    assertWebAccessRecord(rec)
    const m = anon.mapperFor(Date.parse(rec['@timestamp']), now)
    if (m === undefined) { errors++; return }
    bytes += JSON.stringify(anonymizeRecord(rec, m.mapper, anon.scrub, m.caches)).length
  })
  const ms = performance.now() - t0
  anon.destroy()
  return { name: 'auditline record path (parse → anonymizeRecord)', lines, ms, cpu: cpuSince(c0), note: errors === 0 && bytes > 0 ? undefined : `${errors} lines refused, ${bytes} bytes out` }
}

function clockTicks (): number {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { return 100 }
}

/** utime + stime of a live process, all threads, in seconds. */
async function procCpu (pid: number, hz: number): Promise<number> {
  const s = await readFile(`/proc/${pid}/stat`, 'utf8')
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 of stat(5); the slice starts at field 3.
  return (Number(f[11]) + Number(f[12])) / hz
}

/** Counts newlines appended to `file` since the last call (the file only grows). */
function lineCounter (file: string): () => Promise<number> {
  let offset = 0
  let lines = 0
  const buf = Buffer.alloc(4 << 20)
  return async () => {
    let fh
    try { fh = await open(file, 'r') } catch { return lines }
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset)
        if (bytesRead === 0) break
        for (let i = buf.indexOf(10, 0); i !== -1 && i < bytesRead; i = buf.indexOf(10, i + 1)) lines++
        offset += bytesRead
      }
    } finally { await fh.close() }
    return lines
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/**
 * mmanon's modes per address kind. `random` draws a new value for every occurrence (cheapest);
 * `random-consistent` maps an address the same way within the run, as auditline does within an epoch.
 * rsyslog 8.2302.0 (Debian 12) crashes or hangs with `ipv6.anonmode="random-consistent"` on this input
 * (SIGSEGV in the rs:main queue worker after 25k–110k lines, or a worker spinning without output), so
 * the consistent contender keeps IPv6 on `random`.
 */
export interface MmanonModes { ipv4: 'random' | 'random-consistent', ipv6: 'random' | 'random-consistent', embeddedIpv4: 'random' | 'random-consistent' }

export const MMANON_RANDOM: MmanonModes = { ipv4: 'random', ipv6: 'random', embeddedIpv4: 'random' }
export const MMANON_CONSISTENT: MmanonModes = { ipv4: 'random-consistent', ipv6: 'random', embeddedIpv4: 'random-consistent' }

/**
 * imfile → mmanon → omfile, every address fully replaced (all 32/128 bits, as auditline does), in
 * rsyslog 8.2302's parameter names (plugins/mmanon/mmanon.c: ipv4.enable, ipv4.mode, ipv4.bits,
 * ipv6.enable, ipv6.anonmode, ipv6.bits, embeddedipv4.enable, embeddedipv4.anonmode, embeddedipv4.bits;
 * embeddedipv4.bits counts over the whole 128-bit address). No imuxsock, no system log: only the file.
 */
export function rsyslogConfig (dir: string, input: string, output: string, modes: MmanonModes): string {
  return `global(workDirectory="${dir}/rs-work")
module(load="imfile" mode="inotify")
module(load="mmanon")
template(name="msgonly" type="string" string="%msg%\\n")
ruleset(name="anon") {
  action(type="mmanon" ipv4.enable="on" ipv4.mode="${modes.ipv4}" ipv4.bits="32"
         ipv6.enable="on" ipv6.anonmode="${modes.ipv6}" ipv6.bits="128"
         embeddedipv4.enable="on" embeddedipv4.anonmode="${modes.embeddedIpv4}" embeddedipv4.bits="128")
  action(type="omfile" file="${output}" template="msgonly")
}
input(type="imfile" file="${input}" tag="access:" ruleset="anon" freshStartTail="off" readMode="0")
`
}

async function runRsyslog (dir: string, file: string, lines: number, modes: MmanonModes): Promise<Result> {
  const name = `rsyslog mmanon (${modes === MMANON_RANDOM ? 'random' : 'consistent v4, random v6'})`
  const id = randomBytes(3).toString('hex')
  const out = join(dir, `rsyslog-${id}.out`)
  const conf = join(dir, `rsyslog-${id}.conf`)
  await rm(join(dir, 'rs-work'), { recursive: true, force: true })
  await mkdir(join(dir, 'rs-work'))
  await writeFile(conf, rsyslogConfig(dir, file, out, modes))
  try {
    execFileSync('rsyslogd', ['-N1', '-f', conf], { stdio: 'pipe' })
  } catch (err) {
    return { name, lines: 0, ms: 0, note: `config refused: ${String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n').slice(-2).join(' ')}` }
  }
  const hz = clockTicks()
  const count = lineCounter(out)
  const t0 = performance.now()
  const child = spawn('rsyslogd', ['-n', '-f', conf, '-i', join(dir, `rsyslog-${id}.pid`)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const pid = child.pid as number
  let exited = false
  child.once('exit', () => { exited = true })
  let got = 0
  let cpu: number | undefined
  let lastGrowth = performance.now()
  try {
    for (;;) {
      await sleep(20)
      const c = await count()
      if (c > got) { got = c; lastGrowth = performance.now() }
      if (got >= lines) { cpu = await procCpu(pid, hz); break }
      if (exited) break
      if (performance.now() - lastGrowth > 20_000) break
    }
  } finally {
    if (!exited) child.kill('SIGTERM')
    await new Promise<void>(resolve => { if (exited) resolve(); else child.once('exit', () => resolve()) })
  }
  const ms = performance.now() - t0
  const note = got < lines ? `only ${got} of ${lines} lines came out${stderr === '' ? '' : `: ${stderr.trim().split('\n').slice(-1)[0] as string}`}` : undefined
  await rm(out, { force: true })
  return { name, lines: got, ms, ...(cpu === undefined ? {} : { cpu }), ...(note === undefined ? {} : { note }) }
}

async function runGoAccess (dir: string, file: string, lines: number): Promise<Result> {
  const out = join(dir, 'goaccess.json')
  const t0 = performance.now()
  // bash's `times` prints the children's user and system time: no extra package needed to get goaccess's CPU.
  const res = await new Promise<{ code: number | null, stdout: string, stderr: string }>(resolve => {
    const child = spawn('bash', ['-c', 'goaccess "$1" --no-global-config --log-format=COMBINED --no-progress -o "$2" --json-pretty-print </dev/null >/dev/null 2>"$3"; rc=$?; times; exit $rc', '_', file, out, join(dir, 'goaccess.err')], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.once('error', err => resolve({ code: -1, stdout, stderr: String(err) }))
    child.once('exit', code => resolve({ code, stdout, stderr }))
  })
  const ms = performance.now() - t0
  if (res.code !== 0) {
    const err = await readFile(join(dir, 'goaccess.err'), 'utf8').catch(() => res.stderr)
    return { name: 'GoAccess (parse + report)', lines: 0, ms, note: `goaccess failed (${String(res.code)}): ${err.trim().split('\n').slice(-1)[0] ?? ''}` }
  }
  const children = res.stdout.trim().split('\n')[1] ?? ''
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map(m => Number(m[1]) * 60 + Number(m[2]))
  let parsed = lines
  try {
    const report = JSON.parse(await readFile(out, 'utf8')) as { general?: { total_requests?: number, valid_requests?: number } }
    parsed = report.general?.valid_requests ?? report.general?.total_requests ?? lines
  } catch {}
  return { name: 'GoAccess (parse + report)', lines, ms, ...(secs.length === 2 ? { cpu: (secs[0] as number) + (secs[1] as number) } : {}), ...(parsed === lines ? {} : { note: `${parsed} valid requests` }) }
}

// ---------------------------------------------------------------------------------------------------------
// (d) the stream stage over Kafka
// ---------------------------------------------------------------------------------------------------------

async function sumHigh (kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0)
  } finally { await admin.disconnect() }
}

/** Polls until `topic` holds `n` messages; returns the time it got there (or undefined on a stall). */
async function waitForCount (kafka: Kafka, topic: string, n: number, alsoDead?: string): Promise<{ at: number, dead: number } | undefined> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    let last = -1
    let lastGrowth = performance.now()
    for (;;) {
      const got = (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0)
      const dead = alsoDead === undefined ? 0 : (await admin.fetchTopicOffsets(alsoDead)).reduce((s, p) => s + Number(p.high), 0)
      if (got + dead >= n) return { at: performance.now(), dead }
      if (got > last) { last = got; lastGrowth = performance.now() }
      if (performance.now() - lastGrowth > 30_000) return undefined
      await sleep(25)
    }
  } finally { await admin.disconnect() }
}

/** Produces with acks=all in chunks under the broker's request limit, as the collector does. */
async function sendChunked (producer: Producer, topic: string, messages: Message[]): Promise<void> {
  for (const chunk of chunkTopicMessages([{ topic, messages }])) await producer.sendBatch({ topicMessages: chunk, acks: -1 })
}

function joinedAt (consumer: Consumer): { at?: number } {
  const r: { at?: number } = {}
  consumer.on(consumer.events.GROUP_JOIN, () => { r.at ??= performance.now() })
  return r
}

async function runKafka (file: string, n: number, rounds: number): Promise<{ pass?: Result, passJoined?: Result, anon?: Result, anonJoined?: Result }> {
  let brokers = process.env.KAFKA_BROKERS?.split(',').filter(b => b !== '')
  if (brokers === undefined || brokers.length === 0) {
    const { up } = await import('../deploy/local/stack.ts')
    brokers = (await up()).kafka.brokers
  }
  const log = createLogger({ level: 'error' })
  const topicPrefix = `bench${randomBytes(3).toString('hex')}.`
  const kcfg = { brokers, clientId: 'auditline-bench', topicPrefix, replicationFactor: 1, connectionTimeoutMs: 5000, requestTimeoutMs: 30000 }
  const kafka = createKafka(kcfg, log)
  const rawTopic = topicName(topicPrefix, 'webRaw')
  const anonTopic = topicName(topicPrefix, 'webAnon')
  const deadTopic = topicName(topicPrefix, 'deadletter')
  const passTopic = `${topicPrefix}bench.passthrough.v1`
  const admin = kafka.admin()
  await admin.connect()
  try {
    await ensureTopics(admin, kcfg, ['webRaw', 'webAnon', 'deadletter'])
    await admin.createTopics({ topics: [{ topic: passTopic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })

    // Pre-load the raw records exactly as the web-access collector makes them (key, JSON value, headers).
    const toMessage = createWebAccessToMessage('combined', { vhost: 'www.example.com' })
    const pos: Position = { host: 'bench', source: 'web', fileKey: '1:2', generation: 0, offset: 0, path: file }
    const producer = createProducer(kafka)
    await producer.connect()
    let batch: Array<{ key: string, value: string, headers: Record<string, string> }> = []
    let seq = 0
    const readAt = new Date()
    const t0 = performance.now()
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      if (seq >= n) break
      const r = toMessage(line, pos, seq++, readAt)
      pos.offset += line.length + 1
      if (!('message' in r)) continue
      batch.push({ key: r.message.key as string, value: r.message.value as string, headers: r.message.headers as Record<string, string> })
      if (batch.length === 5000) { await sendChunked(producer, rawTopic, batch); batch = [] }
    }
    await sendChunked(producer, rawTopic, batch)
    await producer.disconnect()
    const loaded = await sumHigh(kafka, rawTopic)
    process.stdout.write(`  pre-loaded ${loaded.toLocaleString('en-US')} raw records into ${rawTopic} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)

    const cfg = validateAnonymizer({})
    const id = (): string => randomBytes(4).toString('hex')

    // Pass-through: the same consumer settings, batching, acks=-1 send, commit after ack; no transform.
    async function passThrough (): Promise<[Result, Result?] | undefined> {
      const pc = createConsumer(kafka, `bench-pass-${id()}`, { maxBytes: cfg.maxBytes })
      const pp = createProducer(kafka)
      const joined = joinedAt(pc)
      const before = await sumHigh(kafka, passTopic)
      const c0 = process.cpuUsage()
      const s0 = performance.now()
      await pc.connect()
      await pp.connect()
      await pc.subscribe({ topics: [rawTopic], fromBeginning: true })
      await pc.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
          if (!isRunning() || isStale() || batch.messages.length === 0) return
          for (const chunk of chunkTopicMessages([{ topic: passTopic, messages: batch.messages.map(m => ({ key: m.key, value: m.value, headers: m.headers })) }])) {
            await pp.sendBatch({ topicMessages: chunk, acks: -1 })
          }
          const last = batch.messages[batch.messages.length - 1]
          if (last !== undefined) {
            resolveOffset(last.offset)
            await pc.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }])
          }
          await heartbeat()
        }
      })
      const done = await waitForCount(kafka, passTopic, before + loaded)
      const cpu = cpuSince(c0)
      await pc.disconnect()
      await pp.disconnect()
      if (done === undefined) return undefined
      return [
        { name: 'pass-through consumer → producer', lines: loaded, ms: done.at - s0, cpu },
        ...(joined.at === undefined ? [] : [{ name: 'pass-through, after group join', lines: loaded, ms: done.at - joined.at }])
      ] as [Result, Result?]
    }

    // The anonymizer stage itself, started the way `auditline run anonymize` starts it (a fresh group each round).
    async function anonymizer (): Promise<[Result, Result?] | undefined> {
      const consumer = createConsumer(kafka, `bench-anon-${id()}`, { maxBytes: cfg.maxBytes })
      const joined = joinedAt(consumer)
      const before = await sumHigh(kafka, anonTopic)
      const c0 = process.cpuUsage()
      const s0 = performance.now()
      const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
      const running = await startAnonymizer(cfg, ctx, { consumer, producer: createProducer(kafka), topicPrefix })
      const done = await waitForCount(kafka, anonTopic, before + loaded, deadTopic)
      const cpu = cpuSince(c0)
      await running.close()
      if (done === undefined) return undefined
      const note = done.dead > 0 ? `${done.dead} dead-lettered` : undefined
      return [
        { name: 'anonymizer stage (start())', lines: loaded, ms: done.at - s0, cpu, ...(note === undefined ? {} : { note }) },
        ...(joined.at === undefined ? [] : [{ name: 'anonymizer stage, after group join', lines: loaded, ms: done.at - joined.at }])
      ] as [Result, Result?]
    }

    // Alternated, best of `rounds` each: the machine is shared, and a neighbour's burst should not decide.
    const out: { pass?: Result, passJoined?: Result, anon?: Result, anonJoined?: Result } = {}
    for (let r = 0; r < rounds; r++) {
      const p = await passThrough()
      if (p !== undefined && (out.pass === undefined || p[0].ms < out.pass.ms)) { out.pass = p[0]; out.passJoined = p[1] }
      const a = await anonymizer()
      if (a !== undefined && (out.anon === undefined || a[0].ms < out.anon.ms)) { out.anon = a[0]; out.anonJoined = a[1] }
    }
    return out
  } finally {
    await admin.deleteTopics({ topics: [rawTopic, anonTopic, deadTopic, passTopic] }).catch(() => {})
    await admin.disconnect()
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US')
const perSec = (r: Result): number => r.lines / (r.ms / 1000)
const cpuPerM = (r: Result): number | undefined => r.cpu === undefined || r.lines === 0 ? undefined : r.cpu / (r.lines / 1e6)

function row (r: Result): void {
  const c = cpuPerM(r)
  process.stdout.write(`${r.name.padEnd(50)} ${fmt(r.lines).padStart(10)} ${(r.ms / 1000).toFixed(2).padStart(8)} ${(r.lines === 0 ? '-' : fmt(perSec(r))).padStart(12)} ${(c === undefined ? '-' : c.toFixed(2)).padStart(10)}${r.note === undefined ? '' : `  (${r.note})`}\n`)
}

function header (): void {
  process.stdout.write(`${'contender'.padEnd(50)} ${'lines'.padStart(10)} ${'wall s'.padStart(8)} ${'lines/s'.padStart(12)} ${'CPU s/M'.padStart(10)}\n`)
}

const verdict = (ok: boolean): string => ok ? 'met' : 'NOT met'

function flag (args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name)
  if (i < 0) return dflt
  const v = Number(args[i + 1])
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`)
  return v
}

/** The faster of two results of one contender (undefined-safe). */
function best (a: Result | undefined, b: Result): Result {
  return a === undefined || (b.lines >= a.lines && b.ms < a.ms) ? b : a
}

export async function benchAnonymizer (args: string[]): Promise<void> {
  const lines = flag(args, '--lines', 1_000_000)
  const kafkaLines = Math.min(lines, flag(args, '--kafka-lines', 200_000))
  const recordLines = Math.min(lines, flag(args, '--record-lines', 200_000))
  const rounds = flag(args, '--rounds', 2)
  const seed = flag(args, '--seed', 20260401)
  const skip = new Set((args[args.indexOf('--skip') + 1] ?? '').split(',').filter(() => args.includes('--skip')))
  const dir = await mkdtemp(join(tmpdir(), 'auditline-bench-anon-'))
  try {
    const day = Math.floor(Date.now() / 86_400_000) * 86_400_000
    const file = join(dir, 'access.log')
    const g0 = performance.now()
    const gen = await generateLog(file, lines, seed, day)
    process.stdout.write(`\nGenerated ${fmt(gen.lines)} combined lines (${(gen.bytes / 1e6).toFixed(0)} MB, seed ${seed}, ${fmt(gen.distinctClients)} distinct clients, ${(100 * gen.v6Lines / gen.lines).toFixed(1)} % IPv6 lines) in ${((performance.now() - g0) / 1000).toFixed(1)} s\n`)
    await readFile(file) // into the page cache, so no contender pays the first read

    const version = (cmd: string, arg: string): string => {
      try { return (execFileSync(cmd, [arg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0] ?? '?').replace(/\s+/g, ' ').replace(/ \(aka.*$/, '').trim() } catch { return `${cmd} not installed` }
    }
    process.stdout.write(`node ${process.version}; ${version('rsyslogd', '-v')}; ${version('goaccess', '--version')}\n`)
    process.stdout.write('mmanon action: ' + rsyslogConfig(dir, file, 'OUT', MMANON_RANDOM).split('\n').filter(l => l.includes('mmanon') || l.includes('.enable')).map(l => l.trim()).join(' ') + '\n')
    process.stdout.write(`\n(a) in-process vs (b) rsyslog mmanon vs (c) GoAccess, same file (the first two alternated, best of ${rounds}):\n`)
    header()
    let text: Result | undefined
    let rs: Result | undefined
    for (let r = 0; r < rounds; r++) {
      text = best(text, await runTextPath(file, join(dir, 'anon.out')))
      await rm(join(dir, 'anon.out'), { force: true })
      if (!skip.has('rsyslog')) rs = best(rs, await runRsyslog(dir, file, lines, MMANON_RANDOM))
    }
    if (text === undefined) return
    row(text)
    const mem = await runTextInMemory(file, lines)
    if (mem !== undefined) row(mem)
    const rec = await runRecordPath(file, recordLines)
    row(rec)
    let rsc: Result | undefined
    if (rs !== undefined) {
      row(rs)
      rsc = await runRsyslog(dir, file, lines, MMANON_CONSISTENT)
      row(rsc)
    }
    let ga: Result | undefined
    if (!skip.has('goaccess')) {
      ga = await runGoAccess(dir, file, lines)
      row(ga)
    }

    process.stdout.write('\nRatios and targets (issue #4):\n')
    for (const base of [rs, rsc]) {
      if (base === undefined || base.lines < lines || base.cpu === undefined) {
        if (base !== undefined) process.stdout.write(`  vs ${base.name}: not comparable (${base.note ?? 'no CPU figure'})\n`)
        continue
      }
      const speed = perSec(text) / perSec(base)
      const cpu = (cpuPerM(text) as number) / (cpuPerM(base) as number)
      process.stdout.write(`  auditline anonymize / ${base.name}: lines/s ×${speed.toFixed(2)} (target ≥ 3: ${verdict(speed >= 3)}), CPU per line ×${cpu.toFixed(2)} (target ≤ 0.33: ${verdict(cpu <= 1 / 3)})\n`)
    }
    if (ga !== undefined && ga.lines > 0) {
      process.stdout.write(`  GoAccess parse rate ${fmt(perSec(ga))} lines/s; auditline record path / GoAccess: lines/s ×${(perSec(rec) / perSec(ga)).toFixed(2)}`)
      const a = cpuPerM(rec)
      const b = cpuPerM(ga)
      process.stdout.write(a !== undefined && b !== undefined ? `, CPU per line ×${(a / b).toFixed(2)}\n` : '\n')
    }

    if (skip.has('kafka')) return
    process.stdout.write(`\n(d) stream stage over Kafka, ${fmt(kafkaLines)} records, ratio to a pass-through consumer → producer (alternated, best of ${rounds}):\n`)
    const k = await runKafka(file, kafkaLines, rounds)
    header()
    for (const r of [k.pass, k.passJoined, k.anon, k.anonJoined]) if (r !== undefined) row(r)
    if (k.pass !== undefined && k.anon !== undefined) {
      const ratio = perSec(k.anon) / perSec(k.pass)
      process.stdout.write(`  anonymizer / pass-through (from start()): ×${ratio.toFixed(2)} (target ≥ 0.70: ${verdict(ratio >= 0.7)})\n`)
      if (k.passJoined !== undefined && k.anonJoined !== undefined) {
        const r2 = perSec(k.anonJoined) / perSec(k.passJoined)
        process.stdout.write(`  anonymizer / pass-through (after group join): ×${r2.toFixed(2)} (target ≥ 0.70: ${verdict(r2 >= 0.7)})\n`)
      }
    } else {
      process.stdout.write('  not comparable: a contender stalled before all records arrived\n')
    }
    process.stdout.write('\n')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
