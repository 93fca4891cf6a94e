/**
 * Syslog headers as the real daemons and rsyslog write them:
 *   RFC 3164:              `Nov 28 03:49:07 host sshd[123]: msg` (local time, no year)
 *   RFC 3339 (rsyslog on Debian 12 by default): `2026-11-28T03:49:07.123456+01:00 host sshd[123]: msg`
 *   RFC 5424:              `<38>1 2026-11-28T03:49:07.003Z host sshd 123 - - msg`
 */
export interface SyslogLine {
  /** ISO 8601 with offset. */
  timestamp: string
  hostname: string
  appname: string
  procid?: string
  message: string
}

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 }

const RFC3164 = /^(?:<\d{1,3}>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\S+) ([^\s:[]+)(?:\[(\d+)\])?: ?(.*)$/s
const RFC3339 = /^(?:<\d{1,3}>)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})) (\S+) ([^\s:[]+)(?:\[(\d+)\])?: ?(.*)$/s
const RFC5424 = /^<\d{1,3}>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\](?:\[.*?\])*) ?(.*)$/s

/**
 * Parses a syslog header. `now` resolves RFC 3164's missing year (a date in the future by more than a
 * day belongs to last year); 3164 times are read as the collector process's local time zone.
 */
export function parseSyslog (line: string, now: Date): SyslogLine | undefined {
  let m = RFC3339.exec(line)
  if (m !== null) return withProc({ timestamp: normaliseIso(m[1] as string), hostname: m[2] as string, appname: m[3] as string, message: m[5] as string }, m[4])
  m = RFC5424.exec(line)
  if (m !== null) {
    if (m[1] === '-') return undefined
    return withProc({ timestamp: normaliseIso(m[1] as string), hostname: m[2] as string, appname: m[3] as string, message: stripBom(m[7] as string) }, m[4] === '-' ? undefined : m[4])
  }
  m = RFC3164.exec(line)
  if (m !== null) {
    const month = MONTHS[m[1] as string]
    if (month === undefined) return undefined
    let year = now.getFullYear()
    const d = new Date(year, month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]))
    if (d.getTime() - now.getTime() > 86_400_000) { year -= 1; d.setFullYear(year) }
    return withProc({ timestamp: d.toISOString(), hostname: m[6] as string, appname: m[7] as string, message: m[9] as string }, m[8])
  }
  return undefined
}

function withProc (s: SyslogLine, procid: string | undefined): SyslogLine {
  if (procid !== undefined) s.procid = procid
  return s
}

function stripBom (s: string): string {
  return s.startsWith('\uFEFF') ? s.slice(1) : s
}

/** Keeps up to millisecond precision the schema accepts and turns the time into UTC `Z` form. */
export function normaliseIso (ts: string): string {
  const d = new Date(ts)
  return Number.isNaN(d.getTime()) ? ts : d.toISOString()
}
