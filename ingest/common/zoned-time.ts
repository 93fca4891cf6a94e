/**
 * Wall-clock times from logs that carry no numeric offset, turned into instants. Pure apart from the
 * process time zone behind `local`.
 * MariaDB's server_audit writes `20261129 07:05:41` in the server's local time; PostgreSQL writes
 * `2026-11-29 07:04:51.297 UTC` with `log_timezone`'s abbreviation (`CET`, `CEST`, `+03`).
 */

/** A time zone setting: `local` (the collector process's zone), `UTC`, a fixed offset `+01:00`, or an IANA name `Europe/Berlin`. */
export type ZoneSetting = string

const OFFSET = /^([+-])(\d{2}):?(\d{2})?$/

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter (zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone)
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
    formatters.set(zone, f)
  }
  return f
}

/** Whether `zone` is a setting `wallTimeToIso` understands. */
export function isZoneSetting (zone: string): boolean {
  if (zone === 'local' || zone === 'UTC' || OFFSET.test(zone)) return true
  try {
    formatter(zone)
    return true
  } catch {
    return false
  }
}

/** Offset of `zone` from UTC at instant `utcMs`, in minutes. */
function ianaOffset (zone: string, utcMs: number): number {
  const parts = formatter(zone).formatToParts(new Date(utcMs))
  const get = (t: string): number => Number(parts.find(p => p.type === t)?.value)
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'))
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60_000)
}

export interface WallTime { year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number }

/**
 * The instant of a wall-clock time in `zone`, as ISO 8601 UTC (`…Z`). In a DST fold the earlier instant
 * wins; a time in a DST gap is read with the offset before the gap. Undefined for impossible dates.
 */
export function wallTimeToIso (w: WallTime, zone: ZoneSetting): string | undefined {
  if (w.month < 1 || w.month > 12 || w.day < 1 || w.day > 31 || w.hour > 23 || w.minute > 59 || w.second > 60) return undefined
  const naive = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.ms)
  let ms: number
  if (zone === 'UTC') ms = naive
  else if (zone === 'local') ms = new Date(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.ms).getTime()
  else {
    const m = OFFSET.exec(zone)
    if (m !== null) ms = naive - (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0)) * 60_000
    else {
      // The offsets a day before and after cover both sides of any transition near this time.
      const before = ianaOffset(zone, naive - 86_400_000)
      const after = ianaOffset(zone, naive + 86_400_000)
      const fits = [naive - before * 60_000, naive - after * 60_000].filter(t => ianaOffset(zone, t) * 60_000 === naive - t)
      ms = fits.length > 0 ? Math.min(...fits) : naive - before * 60_000
    }
  }
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

/**
 * Offsets (minutes) of the zone abbreviations PostgreSQL writes for common `log_timezone`s. Ambiguous
 * ones (IST, CST in Asia) are left out: set `log_timezone = 'UTC'` or the source's `timezone` option.
 */
const ABBREVIATIONS: Readonly<Record<string, number>> = {
  UTC: 0,
  UCT: 0,
  GMT: 0,
  Z: 0,
  ZULU: 0,
  UT: 0,
  WET: 0,
  WEST: 60,
  BST: 60,
  CET: 60,
  CEST: 120,
  MET: 60,
  MEST: 120,
  EET: 120,
  EEST: 180,
  MSK: 180,
  EST: -300,
  EDT: -240,
  CST: -360,
  CDT: -300,
  MST: -420,
  MDT: -360,
  PST: -480,
  PDT: -420,
  AKST: -540,
  AKDT: -480,
  HST: -600
}

/**
 * Resolves a zone as PostgreSQL prints it (`UTC`, `CEST`, `+03`, `-0330`) for a given wall time. A numeric
 * or UTC zone is exact; an abbreviation uses `zone` (IANA name) when configured, else the table above.
 */
export function resolvePgZone (w: WallTime, abbr: string, zone: ZoneSetting | undefined): string | undefined {
  const m = /^([+-])(\d{2})(?::?(\d{2}))?$/.exec(abbr)
  if (m !== null) return wallTimeToIso(w, `${m[1] as string}${m[2] as string}:${m[3] ?? '00'}`)
  const upper = abbr.toUpperCase()
  if (ABBREVIATIONS[upper] === 0) return wallTimeToIso(w, 'UTC')
  if (zone !== undefined) return wallTimeToIso(w, zone)
  const off = ABBREVIATIONS[upper]
  if (off === undefined) return undefined
  const sign = off < 0 ? '-' : '+'
  const a = Math.abs(off)
  return wallTimeToIso(w, `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`)
}
