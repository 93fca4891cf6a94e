/**
 * What the behaviour suite feeds the pipeline, the same for every store: sshd lines as Debian 12's rsyslog
 * writes them (staff logins over three days, preceded by older logins that retention deletes), the captured proftpd and
 * MariaDB logs of test/fixtures, control-panel changes with tickets, and the web access logs of two tenants'
 * sites plus canary lines for the leak test. Web lines are dated the two UTC days before the run: the
 * anonymizer serves only epochs within its grace period.
 */
import { join } from 'node:path'
import { generateCombinedLog, type GeneratedLog } from '../../helpers/access-log.ts'
import { canaryLine } from '../../helpers/behaviour-canaries.ts'

/** `ingest.host`: host.name of every collected event and the first part of every collector stream. */
export const HOST = 'collector-1'
const FIXTURES = new URL('../../fixtures/', import.meta.url).pathname
export const PROFTPD_FIXTURE = join(FIXTURES, 'ftp/proftpd-extended.log')
export const MARIADB_FIXTURE = join(FIXTURES, 'db/mariadb-audit.log')

const STAFF = ['anna', 'bob', 'carol', 'dave'] as const
const MINUTE = 60_000
const DAY = 86_400_000

/** An rsyslog RFC 3339 header time with microseconds (`2026-11-20T06:00:00.000000+00:00`). */
function rfc3339 (ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00')
}

/**
 * Forty sshd lines, one event each, from 2026-11-20 06:00 UTC every 71 minutes (three UTC days): users in
 * turn, even ones from 10.20.30.<i>, odd ones from fd00:a::<i hex>, every fifth a failed password, every third
 * success by public key.
 */
export function authLines (): string[] {
  return Array.from({ length: 40 }, (_, i) => {
    const user = STAFF[i % STAFF.length] as string
    const ip = i % 2 === 0 ? `10.20.30.${i}` : `fd00:a::${i.toString(16)}`
    const head = `${rfc3339(Date.UTC(2026, 10, 20, 6) + i * 71 * MINUTE)} backend-${1 + (i % 3)} sshd[${3000 + i}]:`
    if (i % 5 === 0) return `${head} Failed password for ${user} from ${ip} port ${40000 + i} ssh2`
    if (i % 3 === 0) return `${head} Accepted publickey for ${user} from ${ip} port ${40000 + i} ssh2: ED25519 SHA256:q0bXbHt1AtBOAc1ztnCNbIVKeNb1gkDM1zMcZ4QgG${String(i).padStart(2, '0')}`
    return `${head} Accepted password for ${user} from ${ip} port ${40000 + i} ssh2`
  })
}

/** Days of the older sshd logins: retention at RETENTION_NOW deletes the first two days' indices, keeps the third's. */
export const OLD_DAYS = [
  { day: '2026-08-01', events: 3, expired: true },
  { day: '2026-08-02', events: 2, expired: true },
  { day: '2026-09-15', events: 2, expired: false }
] as const

/** The injected retention clock: ssh (90 days) of 2026-08-01/02 has expired, of 2026-09-15 not (due 2026-12-15). */
export const RETENTION_NOW = new Date('2026-12-01T00:00:00Z')

/** The older sshd lines: logins of `erin` on the OLD_DAYS, one hour apart. */
export function oldAuthLines (): string[] {
  return OLD_DAYS.flatMap(({ day, events }) => Array.from({ length: events }, (_, i) =>
    `${rfc3339(Date.parse(`${day}T09:00:00Z`) + i * 60 * MINUTE)} backend-9 sshd[${5000 + i}]: Accepted password for erin from 10.20.40.${i + 1} port ${41000 + i} ssh2`))
}

/** A control-panel change as the panel POSTs it (ingest/panel-http/transform.ts PanelEventBodySchema). */
export interface PanelChange {
  id: string
  timestamp: string
  actor: { kind: 'staff' | 'customer', id: string, name: string }
  customer: string
  object: { type: string, id: string }
  action: string
  changed_fields: string[]
  ticket_id?: string
  source_ip?: string
  reason?: string
}

/** Six changes on 2026-11-21 from 09:00 UTC, 40 minutes apart: staff ones under tickets, customers' own without. */
export function panelChanges (): PanelChange[] {
  const at = (i: number): string => new Date(Date.UTC(2026, 10, 21, 9) + i * 40 * MINUTE).toISOString()
  const ulla = { kind: 'staff' as const, id: 'staff-17', name: 'support.ulla' }
  const otto = { kind: 'staff' as const, id: 'staff-23', name: 'support.otto' }
  return [
    { id: 'chg-1', timestamp: at(0), actor: ulla, customer: 'cust-4711', object: { type: 'dns_record', id: 'example.org/MX/10' }, action: 'update', changed_fields: ['priority', 'target'], ticket_id: 'OPS-1', source_ip: '10.9.8.7', reason: 'move mail to the new cluster' },
    { id: 'chg-2', timestamp: at(1), actor: ulla, customer: 'cust-4711', object: { type: 'mailbox', id: 'info@example.org' }, action: 'create', changed_fields: ['quota'], ticket_id: 'OPS-1', source_ip: '10.9.8.7' },
    { id: 'chg-3', timestamp: at(2), actor: otto, customer: 'cust-0815', object: { type: 'database', id: 'db_0815_shop' }, action: 'delete', changed_fields: [], ticket_id: 'OPS-2', reason: 'customer cancelled the database' },
    { id: 'chg-4', timestamp: at(3), actor: { kind: 'customer', id: 'c-0815', name: 'owner0815' }, customer: 'cust-0815', object: { type: 'ftp_user', id: 'web0815' }, action: 'update', changed_fields: ['password'], source_ip: 'fd00:b::5' },
    { id: 'chg-5', timestamp: at(4), actor: { kind: 'customer', id: 'c-4711', name: 'owner4711' }, customer: 'cust-4711', object: { type: 'user', id: 'editor' }, action: 'create', changed_fields: ['name', 'roles'] },
    { id: 'chg-6', timestamp: at(5), actor: otto, customer: 'cust-4711', object: { type: 'domain', id: 'example.org' }, action: 'suspend', changed_fields: ['state'], ticket_id: 'OPS-3' }
  ]
}

/** Changes that arrive while a client pages through the results: newer than everything else. */
export function laterPanelChanges (): PanelChange[] {
  return [0, 1, 2].map(i => ({
    id: `chg-late-${i}`,
    timestamp: new Date(Date.UTC(2026, 10, 25, 12) + i * MINUTE).toISOString(),
    actor: { kind: 'customer' as const, id: 'c-4711', name: 'owner4711' },
    customer: 'cust-4711',
    object: { type: 'mailbox', id: `late${i}@example.org` },
    action: 'delete',
    changed_fields: []
  }))
}

export const SITE_A = 'shop.a.example'
export const SITE_B = 'shop.b.example'
export const CANARY_SITE = 'canary.example'
export const CANARY_LINES = 2000

export interface WebInput {
  /** The two UTC days (`YYYY-MM-DD`) before `now`'s. */
  days: [string, string]
  a: GeneratedLog
  b: GeneratedLog
  /** Canary lines (CANARY_LOG_FORMAT) of CANARY_SITE, from 10:00 UTC of the later day, one a second. */
  canaries: string[]
}

export function webInput (now: Date): WebInput {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())
  const days: [string, string] = [new Date(today - 2 * DAY).toISOString().slice(0, 10), new Date(today - DAY).toISOString().slice(0, 10)]
  const start = Date.parse(`${days[1]}T10:00:00Z`)
  return {
    days,
    a: generateCombinedLog(11, { days, humans: 10, site: SITE_A }),
    b: generateCombinedLog(12, { days: [days[1]], humans: 5, site: SITE_B }),
    canaries: Array.from({ length: CANARY_LINES }, (_, i) => canaryLine(i, new Date(start + i * 1000), CANARY_SITE))
  }
}
