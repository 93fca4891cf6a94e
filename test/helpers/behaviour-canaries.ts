/**
 * Canary visitor addresses for leak tests: web access lines that hold them in every position a line can
 * (client address, X-Forwarded-For, path, query, referrer, reverse-DNS names, user, user agent) and in every
 * notation (IPv4, IPv6 full and compressed, IPv4-mapped, dashed, reversed, percent-encoded), and the check
 * that finds any of those notations in a text. Used by test/integration/anonymizer/leak.int.test.ts and the behaviour suite.
 */
import { clf } from './access-log.ts'

/** nginx `log_format` of the canary lines (combined + X-Forwarded-For + host, so that the site is `$host`). */
export const CANARY_LOG_FORMAT = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $host'

const V4 = '203.0.113.77'
const V6 = '2001:db8:c0de::77'

/** Every notation in which a canary could survive an anonymizer that missed it. */
export const CANARY_NOTATIONS: readonly string[] = [
  V4, '203-0-113-77', '203_0_113_77', '77.113.0.203', '77-113-0-203',
  V6, '2001:0db8:c0de:0000:0000:0000:0000:0077', '2001:db8:c0de:0:0:0:0:77', '2001-db8-c0de--77',
  '2001%3adb8%3ac0de%3a%3a77', '::ffff:203.0.113.78', '203.0.113.78', 'ffff:cb00:714e', '203-0-113-78'
]

/** The `i`-th canary line (ten variants in turn) of `site` at `at`, in CANARY_LOG_FORMAT. */
export function canaryLine (i: number, at: Date, site: string): string {
  const t = clf(at.getTime())
  const other = `198.51.100.${i % 250}`
  switch (i % 10) {
    case 0: return `${V4} - - [${t}] "GET /p/${i} HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" "-" ${site}`
    case 1: return `${V6} - - [${t}] "GET /p/${i} HTTP/1.1" 200 512 "-" "Mozilla/5.0" "-" ${site}`
    case 2: return `::ffff:203.0.113.78 - - [${t}] "GET /p/${i} HTTP/1.1" 200 512 "-" "Mozilla/5.0" "-" ${site}`
    case 3: return `${other} - - [${t}] "GET /p/${i} HTTP/1.1" 200 512 "-" "Mozilla/5.0" "${V4}, ${V6}" ${site}`
    case 4: return `${other} - - [${t}] "GET /ban/${V4}/${i} HTTP/1.1" 200 512 "-" "Mozilla/5.0" "-" ${site}`
    case 5: return `${other} - - [${t}] "GET /x?client=2001%3Adb8%3Ac0de%3A%3A77&n=${i}&from=${V4} HTTP/1.1" 200 512 "-" "Mozilla/5.0" "-" ${site}`
    case 6: return `${other} - - [${t}] "GET /r/${i} HTTP/1.1" 302 0 "http://203-0-113-77.dsl.example.net/?via=[${V6}]:443" "Mozilla/5.0" "-" ${site}`
    case 7: return `${other} - ${V4} [${t}] "GET /u/${i} HTTP/1.1" 401 0 "-" "Mozilla/5.0" "-" ${site}`
    case 8: return `${other} - - [${t}] "GET /ua/${i} HTTP/1.1" 200 1 "-" "scanner/1.0 (from ${V4}; 2001:0db8:c0de:0000:0000:0000:0000:0077)" "-" ${site}`
    default: return `${other} - - [${t}] "GET /rdns/${i} HTTP/1.1" 200 1 "http://77.113.0.203.in-addr.arpa/ and http://2001-db8-c0de--77.ipv6-literal.net/ and http://ip-203_0_113_77.example.org/" "Mozilla/5.0" "-" ${site}`
  }
}

/** The first canary notation found in `text` (case-insensitive), if any. */
export function findCanary (text: string): string | undefined {
  const low = text.toLowerCase()
  return CANARY_NOTATIONS.find(n => low.includes(n.toLowerCase()))
}
