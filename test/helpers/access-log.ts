/**
 * A seeded, realistic combined-format access log of one site over whole UTC days, for statistics tests:
 * human visitors (IPv4 and IPv6, desktop and mobile browsers, a few behind one NAT address), crawlers
 * (Googlebot, bingbot, YandexBot, AhrefsBot), a curl health check, scanners that only get 404s, assets with query strings, 304s,
 * HEAD requests, POST→303 forms, 301 redirects, 404s and a few 500s. Lines are in time order, written
 * with `+0000` so that the local day of every line is its UTC day. Same seed, same log.
 */
import { createWebAccessToMessage, type WebAccessRecord } from '../../ingest/web-access/index.ts'
import { Anonymizer, validate as validateAnonymizer } from '../../anonymizer/run.ts'
import { anonymizeRecord } from '../../anonymizer/transform.ts'
import type { AnonymizedAccess } from '../../anonymizer/record.ts'
import { Rng } from '../../ingest/demo/generate.ts'

export interface GeneratedLog {
  lines: string[]
  /** UTC days covered, `YYYY-MM-DD`. */
  days: string[]
  /** Every client address written. */
  addresses: string[]
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36',
  'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36'
]

const CRAWLERS: Array<{ ua: string, ips: string[] }> = [
  { ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', ips: ['66.249.66.1', '66.249.66.87', '2001:4860:4801:10::4'] },
  { ua: 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36', ips: ['40.77.167.12', '2a01:111:f100:3000::a83e:1a5b'] },
  { ua: 'Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)', ips: ['5.255.231.20'] },
  { ua: 'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)', ips: ['54.36.148.9', '2001:41d0:303:5::1'] }
]

const SCANNERS = ['198.18.0.23', '2001:db8:bad::5', '198.18.7.200']

const PAGES = [
  '/', '/products', '/products/widget-1', '/products/widget-2', '/products/gadget', '/about', '/contact',
  '/blog', '/blog/spring-sale', '/blog/how-we-ship', '/blog/widget-care', '/faq', '/shipping', '/returns',
  '/imprint', '/privacy', '/search', '/cart', '/products/widget-3', '/blog/archive'
]
const ASSETS = ['/assets/site.css?v=3', '/assets/app.js', '/img/logo.png', '/img/hero.webp', '/favicon.ico', '/fonts/inter.woff2']
const EXTERNAL_REFERRERS = ['https://www.google.com/', 'https://www.bing.com/', 'https://t.co/x7Yq2', 'https://news.example.org/widgets-roundup', 'https://duckduckgo.com/']

/** The demo generator's seeded PRNG (mulberry32): the test needs reproducible, not strong, randomness. */
function prng (seed: number): () => number {
  const rng = new Rng(seed)
  return () => rng.next()
}

/** A time as nginx/apache `$time_local` writes it in UTC (`29/Nov/2026:09:50:00 +0000`). */
export function clf (ms: number): string {
  const d = new Date(ms)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()] as string}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
}

export function generateCombinedLog (seed: number, opts: { days: string[], humans: number, site: string }): GeneratedLog {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T
  // Zipf-like page popularity, so that the top of the list is mostly free of ties.
  const zipf = (xs: readonly string[]): string => {
    const weights = xs.map((_, i) => 1 / (i + 1) ** 1.1)
    let r = rnd() * weights.reduce((a, b) => a + b, 0)
    for (let i = 0; i < xs.length; i++) { r -= weights[i] as number; if (r <= 0) return xs[i] as string }
    return xs[xs.length - 1] as string
  }
  const entries: Array<{ ms: number, n: number, line: string }> = []
  let n = 0
  const emit = (ms: number, ip: string, method: string, target: string, status: number, bytes: number, ref: string, ua: string): void => {
    entries.push({ ms, n: n++, line: `${ip} - - [${clf(ms)}] "${method} ${target} HTTP/1.1" ${status} ${bytes} "${ref}" "${ua}"` })
  }
  const size = (target: string): number => 200 + Math.floor(rnd() * 40_000) + target.length

  // Human clients: ~70 % IPv4, ~30 % IPv6; every tenth shares the address of an earlier one (NAT, other browser).
  const clients: Array<{ ip: string, ua: string }> = []
  for (let i = 0; i < opts.humans; i++) {
    const ip = i % 10 === 9 && clients.length > 0
      ? (pick(clients)).ip
      : rnd() < 0.7
        ? `${pick(['198.51.100', '203.0.113', '192.0.2'])}.${1 + Math.floor(rnd() * 254)}`
        : `2001:db8:${(Math.floor(rnd() * 0xffff)).toString(16)}::${(1 + Math.floor(rnd() * 0xfffe)).toString(16)}`
    clients.push({ ip, ua: pick(BROWSERS) })
  }

  const site = `https://${opts.site}`
  for (const day of opts.days) {
    const dayStart = Date.parse(`${day}T00:00:00Z`)
    // Visits start before 22:00 and last under two hours: every line stays in its UTC day.
    for (const c of clients) {
      if (rnd() < 0.25) continue
      const visits = 1 + Math.floor(rnd() * 3)
      for (let v = 0; v < visits; v++) {
        let t = dayStart + Math.floor(rnd() * 22 * 3_600_000)
        let ref = rnd() < 0.6 ? pick(EXTERNAL_REFERRERS) : '-'
        const views = 1 + Math.floor(rnd() * 7)
        let seenAssets = false
        for (let k = 0; k < views; k++) {
          const page = zipf(PAGES)
          const r = rnd()
          if (page === '/contact' && r < 0.3) {
            emit(t, c.ip, 'POST', '/contact', 303, 0, `${site}/contact`, c.ua)
            t += 1000
            emit(t, c.ip, 'GET', '/thanks', 200, size('/thanks'), `${site}/contact`, c.ua)
          } else if (page === '/search') {
            emit(t, c.ip, 'GET', `/search?q=${pick(['widget', 'gadget', 'shipping', 'sale'])}`, r < 0.2 ? 500 : 200, size(page), ref, c.ua)
          } else if (r < 0.04) {
            emit(t, c.ip, 'GET', pick(['/old-shop', '/wp-login.php', '/products/widget-9']), 404, 153, ref, c.ua)
          } else if (r < 0.08) {
            emit(t, c.ip, 'GET', '/shop', 301, 162, ref, c.ua)
            t += 1000
            emit(t, c.ip, 'GET', '/products', 200, size('/products'), ref, c.ua)
          } else {
            const status = k > 0 && r < 0.15 ? 304 : 200
            emit(t, c.ip, r > 0.97 ? 'HEAD' : 'GET', page, status, status === 304 ? 0 : size(page), ref, c.ua)
          }
          for (const a of ASSETS) {
            if (seenAssets && rnd() < 0.7) continue
            const st = seenAssets ? 304 : 200
            emit(t + 1000, c.ip, 'GET', a, st, st === 304 ? 0 : size(a), `${site}${page}`, c.ua)
          }
          seenAssets = true
          ref = `${site}${page}`
          t += 10_000 + Math.floor(rnd() * 10 * 60_000)
        }
      }
    }
    for (const cr of CRAWLERS) {
      const hits = 15 + Math.floor(rnd() * 40)
      for (let i = 0; i < hits; i++) {
        const t = dayStart + Math.floor(rnd() * 24 * 3_600_000)
        const target = rnd() < 0.1 ? '/robots.txt' : rnd() < 0.1 ? '/sitemap.xml' : rnd() < 0.08 ? '/products/discontinued' : zipf(PAGES)
        emit(t, pick(cr.ips), 'GET', target, target === '/products/discontinued' ? 404 : 200, size(target), '-', cr.ua)
      }
    }
    for (let h = 0; h < 24; h++) emit(dayStart + h * 3_600_000 + 17_000, '192.0.2.250', 'GET', '/', 200, size('/'), '-', 'curl/8.5.0')
    // Scanners with a browser user agent that only ever get 404s: visitors that GoAccess counts only with --4xx-to-unique-count.
    for (const ip of SCANNERS) {
      const t = dayStart + Math.floor(rnd() * 23 * 3_600_000)
      for (const [i, target] of ['/wp-login.php', '/.env', '/phpmyadmin/', '/xmlrpc.php', '/.git/config'].entries()) emit(t + i * 2000, ip, 'GET', target, 404, 153, '-', BROWSERS[0] as string)
    }
  }
  entries.sort((a, b) => a.ms - b.ms || a.n - b.n)
  const addresses = [...new Set([...clients.map(c => c.ip), ...CRAWLERS.flatMap(c => c.ips), '192.0.2.250', ...SCANNERS])]
  return { lines: entries.map(e => e.line), days: opts.days, addresses }
}

/**
 * auditline's own path for those lines: the web-access parser exactly as the collector runs it (format
 * `combined`, the site as `vhost`), then the anonymizer with one epoch key per UTC day (its clock is the
 * record's own time, so each day gets its key as a live anonymizer would). Keys are destroyed at the end.
 */
export function anonymizeLines (lines: readonly string[], site: string): AnonymizedAccess[] {
  const toMessage = createWebAccessToMessage('combined', { vhost: site })
  const anon = new Anonymizer(validateAnonymizer({}))
  const out: AnonymizedAccess[] = []
  let offset = 0
  try {
    lines.forEach((line, i) => {
      const r = toMessage(line, { host: 'web-1', source: 'shop', fileKey: '2049:1234', generation: 0, offset, path: '/var/log/nginx/shop.access.log' }, i, new Date())
      offset += Buffer.byteLength(line) + 1
      if (!('message' in r)) throw new Error(`line ${i} not parsed: ${JSON.stringify(r)}`)
      const raw = JSON.parse(String(r.message.value)) as WebAccessRecord
      const t = Date.parse(raw['@timestamp'])
      const m = anon.mapperFor(t, t)
      if (m === undefined) throw new Error(`no epoch key for ${raw['@timestamp']}`)
      out.push(anonymizeRecord(raw, m.mapper, anon.scrub, m.caches))
    })
  } finally {
    anon.destroy()
  }
  return out
}
