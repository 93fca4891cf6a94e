/**
 * A small user-agent classifier for visitor statistics: browser family and major version, OS family,
 * device class, and whether it is a bot. Statistics need families, not every device model; a 40-line
 * table beats a dependency (ua-parser-js 2.x is AGPL; 1.x is unmaintained) and runs once per distinct
 * user agent per epoch (cached by the caller).
 */
export interface UserAgentInfo {
  name: string
  version?: string
  os: string
  device: 'desktop' | 'mobile' | 'tablet' | 'bot' | 'other'
}

// Order matters: Edge and Opera carry "Chrome", Chrome carries "Safari".
const BROWSERS: Array<[RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\/(\d+)/, 'Edge'],
  [/\bOPR\/(\d+)|\bOpera\/(\d+)/, 'Opera'],
  [/\bSamsungBrowser\/(\d+)/, 'Samsung Internet'],
  [/\bYaBrowser\/(\d+)/, 'Yandex Browser'],
  [/\bFirefox\/(\d+)|\bFxiOS\/(\d+)/, 'Firefox'],
  [/\bChrome\/(\d+)|\bCriOS\/(\d+)|\bChromium\/(\d+)/, 'Chrome'],
  [/\bVersion\/(\d+)[^ ]* (?:Mobile\/\S+ )?Safari\//, 'Safari'],
  [/\bMSIE (\d+)|\bTrident\/.*rv:(\d+)/, 'Internet Explorer'],
  [/^curl\/(\d+)/, 'curl'],
  [/^Wget\/(\d+)/, 'Wget'],
  [/^python-requests\/(\d+)|^Python-urllib\/(\d+)/, 'Python'],
  [/^Go-http-client\/(\d+)/, 'Go']
]

const BOT = /bot\b|crawl|spider|slurp|bingpreview|facebookexternalhit|embedly|monitor|uptime|headless|lighthouse|\+https?:\/\//i

const OSES: Array<[RegExp, string]> = [
  [/Windows NT|Windows Phone/, 'Windows'],
  [/iPhone|iPad|iPod|\biOS\b/, 'iOS'],
  [/Android/, 'Android'],
  [/Mac OS X|Macintosh/, 'macOS'],
  [/CrOS/, 'ChromeOS'],
  [/Linux|X11/, 'Linux']
]

export function parseUserAgent (ua: string | undefined): UserAgentInfo {
  if (ua === undefined || ua === '' || ua === '-') return { name: 'unknown', os: 'unknown', device: 'other' }
  let name = 'other'
  let version: string | undefined
  for (const [re, n] of BROWSERS) {
    const m = re.exec(ua)
    if (m !== null) {
      name = n
      version = m.slice(1).find(v => v !== undefined)
      break
    }
  }
  let os = 'other'
  for (const [re, o] of OSES) if (re.test(ua)) { os = o; break }
  const device = BOT.test(ua)
    ? 'bot'
    : /iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua))
      ? 'tablet'
      : /Mobile|iPhone|Android/.test(ua) ? 'mobile' : (os === 'other' ? 'other' : 'desktop')
  return { name, ...(version === undefined ? {} : { version }), os, device }
}
