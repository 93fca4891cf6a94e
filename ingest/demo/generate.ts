/**
 * The demo's synthetic log lines (issue #7): seeded generators that write what sshd (through rsyslog),
 * vsftpd, pure-ftpd, MariaDB's server_audit plugin, PostgreSQL and nginx write, in exactly the formats of
 * the captured lines in test/fixtures/, so that the demo runs the real collectors, anonymizer and statistics.
 *
 * Pure: no I/O and no clock. A stream's output depends only on its seed and on the times it is asked for.
 * Sessions span several calls (a login now, its logout minutes later), so lines of different sessions
 * interleave as they do in real logs. Every address is from a documentation range (RFC 5737: 192.0.2.0/24,
 * 198.51.100.0/24, 203.0.113.0/24; RFC 3849: 2001:db8::/32) or private (10.0.0.0/8); names are invented.
 */
import type { SourceConfig } from '../config.ts'

// ---------------------------------------------------------------- randomness

/** mulberry32: a small, fast, seedable PRNG (not for anything secret). */
export class Rng {
  #a: number

  constructor (seed: number) {
    this.#a = seed >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    this.#a = (this.#a + 0x6D2B79F5) >>> 0
    let t = this.#a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Integer in [min, max]. */
  int (min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  pick<T> (xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)] as T
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  /** One of `entries` with probability proportional to its weight. */
  weighted<T> (entries: ReadonlyArray<readonly [T, number]>): T {
    let r = this.next() * entries.reduce((s, [, w]) => s + w, 0)
    for (const [v, w] of entries) {
      r -= w
      if (r < 0) return v
    }
    return (entries[entries.length - 1] as readonly [T, number])[0]
  }

  /** `n` characters of `alphabet`. */
  chars (n: number, alphabet: string): string {
    let s = ''
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)]
    return s
  }
}

/** An independent seed for sub-stream `k` of `seed` (a murmur3 finaliser, so neighbouring seeds diverge). */
export function deriveSeed (seed: number, k: number): number {
  let z = (seed + Math.imul(k + 1, 0x9E3779B9)) >>> 0
  z = Math.imul(z ^ (z >>> 16), 0x85EBCA6B) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xC2B2AE35) >>> 0
  return (z ^ (z >>> 16)) >>> 0
}

// ---------------------------------------------------------------- time stamps as each program writes them

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const p2 = (n: number): string => String(n).padStart(2, '0')

/** The local zone's offset at `d`: `+01:00` (colon) or `+0100`. */
function localOffset (d: Date, colon: boolean): string {
  const off = -d.getTimezoneOffset()
  const a = Math.abs(off)
  return `${off < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}${colon ? ':' : ''}${p2(a % 60)}`
}

function localClock (d: Date): string {
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`
}

/** rsyslog's RSYSLOG_FileFormat (Debian 12's auth.log): local time with microseconds and offset. */
export function rfc3339Local (us: number): string {
  const d = new Date(Math.floor(us / 1000))
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${localClock(d)}.${String(us % 1_000_000).padStart(6, '0')}${localOffset(d, true)}`
}

/** vsftpd's `%a %b %e %H:%M:%S %Y`: local time without a zone. */
export function ctimeLocal (ms: number): string {
  const d = new Date(ms)
  return `${WEEKDAYS[d.getDay()] as string} ${MONTHS[d.getMonth()] as string} ${String(d.getDate()).padStart(2, ' ')} ${localClock(d)} ${d.getFullYear()}`
}

/** server_audit's `YYYYMMDD hh:mm:ss`, in UTC (the demo source is configured with `timezone: UTC`). */
export function mariadbUtc (ms: number): string {
  const d = new Date(ms)
  return `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`
}

/** PostgreSQL's `%m` with `log_timezone = 'UTC'`. */
export function pgUtc (ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC')
}

/** nginx's `$time_local`: `29/Nov/2026:07:17:53 +0100`. */
export function nginxLocal (ms: number): string {
  const d = new Date(ms)
  return `${p2(d.getDate())}/${MONTHS[d.getMonth()] as string}/${d.getFullYear()}:${localClock(d)} ${localOffset(d, false)}`
}

// ---------------------------------------------------------------- sessions

/** The next time stamp of a stream, in µs since the epoch: never earlier than the one before. */
type Stamp = () => number

interface Step {
  /** Pause before this step, in ms: the time between two moments of one session. */
  afterMs: number
  lines: (stamp: Stamp) => string[]
}

interface Session { due: number, steps: Step[] }

/** A stream of log lines: one file the demo writes and one ingest source that reads it. */
export interface DemoStream {
  /** The ingest source entry without `paths` (run.ts adds the file's path). */
  readonly source: Omit<SourceConfig, 'paths'>
  /** File name in the demo directory. */
  readonly file: string
  /** This stream's part of the demo's lines per second (the parts add up to 1). */
  readonly share: number
  /**
   * Web access lines: the anonymizer dead-letters records of an epoch whose key is already destroyed
   * (anonymizer/anonymize-ip/epoch-key.ts), so these are never dated before the current UTC day.
   */
  readonly web: boolean
  /** The lines of the next moment of some session, dated `at` (or a few ms after the previous line). */
  next (at: Date): string[]
}

/**
 * Runs scripted sessions: a call continues the open session that is due first, else starts a new one.
 * At most `maxOpen` sessions stay open (memory stays fixed); when that many are, the earliest continues even if
 * not yet due, so a busy stream plays its sessions faster than scripted.
 */
class ScriptedStream implements DemoStream {
  readonly #open: Session[] = []
  readonly #rng: Rng
  #clock = 0

  constructor (
    readonly source: Omit<SourceConfig, 'paths'>,
    readonly file: string,
    readonly share: number,
    readonly web: boolean,
    seed: number,
    private readonly begin: (rng: Rng) => Step[],
    private readonly maxOpen: number,
    /** Largest gap between two lines of one moment, in µs (sub-ms for sshd, more for a page and its assets). */
    private readonly lineGapUs = 2000
  ) {
    this.#rng = new Rng(seed)
  }

  readonly #stamp: Stamp = () => {
    this.#clock += this.#rng.int(20, this.lineGapUs)
    return this.#clock
  }

  next (at: Date): string[] {
    const now = at.getTime() * 1000
    if (now > this.#clock) this.#clock = now
    let i = -1
    for (let k = 0; k < this.#open.length; k++) {
      const s = this.#open[k] as Session
      if ((s.due <= now || this.#open.length >= this.maxOpen) && (i < 0 || s.due < (this.#open[i] as Session).due)) i = k
    }
    let current: Step
    if (i >= 0) {
      const s = this.#open[i] as Session
      current = s.steps.shift() as Step
      if (s.steps.length === 0) this.#open.splice(i, 1)
      else s.due = now + (s.steps[0] as Step).afterMs * 1000
    } else {
      const steps = this.begin(this.#rng)
      current = steps.shift() as Step
      if (steps.length > 0) this.#open.push({ due: now + (steps[0] as Step).afterMs * 1000, steps })
    }
    return current.lines(this.#stamp)
  }
}

const step = (afterMs: number, lines: Step['lines']): Step => ({ afterMs, lines })

// ---------------------------------------------------------------- addresses

function v4 (rng: Rng, net: string): string {
  return `${net}.${rng.int(1, 254)}`
}

/** A visitor: 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32 (a third IPv6). */
function visitorIp (rng: Rng): string {
  if (rng.chance(0.3)) return `2001:db8:${rng.int(0x100, 0xffff).toString(16)}:${rng.int(1, 0xff).toString(16)}::${rng.int(1, 0xfff).toString(16)}`
  return v4(rng, rng.pick(['198.51.100', '203.0.113']))
}

/** A scanner or brute-forcer: the upper halves of the visitor ranges, or 2001:db8:bad::/48. */
function attackerIp (rng: Rng): string {
  if (rng.chance(0.2)) return `2001:db8:bad::${rng.int(1, 0xfff).toString(16)}`
  return `${rng.pick(['198.51.100', '203.0.113'])}.${rng.int(200, 254)}`
}

const ephemeralPort = (rng: Rng): number => rng.int(32768, 60999)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

// ---------------------------------------------------------------- sshd (auth.log)

const SSH_HOSTS = [
  { name: 'web01', v4: '10.10.0.11', v6: '2001:db8:10::11' },
  { name: 'web02', v4: '10.10.0.12', v6: '2001:db8:10::12' },
  { name: 'db01', v4: '10.10.0.21', v6: '2001:db8:10::21' },
  { name: 'ftp01', v4: '10.10.0.31', v6: '2001:db8:10::31' },
  { name: 'mail01', v4: '10.10.0.41', v6: '2001:db8:10::41' }
]

interface Staff { user: string, uid: number, ips: string[], publickeyOnly: boolean, commands: string[] }

const STAFF: Staff[] = [
  { user: 'alice.admin', uid: 1001, ips: ['10.20.1.11', '2001:db8:20::11'], publickeyOnly: false, commands: ['/usr/bin/systemctl reload nginx', '/usr/bin/apt-get upgrade -y', '/usr/bin/journalctl -u nginx --since today'] },
  { user: 'bob.ops', uid: 1002, ips: ['192.0.2.23', '2001:db8:20::23'], publickeyOnly: false, commands: ['/usr/bin/systemctl restart php8.2-fpm', '/usr/sbin/nginx -t', '/usr/bin/tail -n 200 /var/log/nginx/error.log'] },
  { user: 'carol.dev', uid: 1003, ips: ['192.0.2.31', '2001:db8:20::31'], publickeyOnly: false, commands: ['/usr/bin/systemctl status mariadb', '/usr/bin/crontab -l -u www-data'] },
  { user: 'dave.backup', uid: 1004, ips: ['10.20.5.40'], publickeyOnly: true, commands: [] }
]

const SCAN_USERS = ['admin', 'test', 'oracle', 'ubuntu', 'git', 'postgres', 'user', 'guest', 'support', 'ftpuser', 'pi', 'deploy', 'jenkins']

function sshdStream (seed: number): DemoStream {
  const init = new Rng(deriveSeed(seed, 1000))
  const keys = new Map(STAFF.map(s => [s.user, `SHA256:${init.chars(43, B64)}`]))
  let pid = init.int(2000, 30000)

  function begin (rng: Rng): Step[] {
    const host = rng.pick(SSH_HOSTS)
    const myPid = (pid += rng.int(3, 40))
    const port = ephemeralPort(rng)
    const line = (stamp: Stamp, msg: string, p: number | undefined = myPid): string =>
      `${rfc3339Local(stamp())} ${host.name} ${p === undefined ? 'sshd' : `sshd[${p}]`}: ${msg}`
    const connect = (ip: string) => (stamp: Stamp): string =>
      line(stamp, `Connection from ${ip} port ${port} on ${ip.includes(':') ? host.v6 : host.v4} port 22 rdomain ""`)
    const kind = rng.weighted<'staff' | 'invalid' | 'probe' | 'brute'>([['staff', 50], ['invalid', 22], ['probe', 25], ['brute', 3]])

    if (kind === 'staff') {
      const s = rng.pick(STAFF)
      const ip = rng.pick(s.ips)
      const child = myPid + 1
      const tty = rng.int(0, 6)
      const publickey = s.publickeyOnly || rng.chance(0.7)
      const fp = keys.get(s.user) as string
      const steps: Step[] = [step(0, stamp => [connect(ip)(stamp)])]
      if (!publickey && rng.chance(0.2)) {
        // A mistyped password first.
        steps.push(step(rng.int(2000, 6000), stamp => [
          line(stamp, `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=${s.user}`),
          line(stamp, `Failed password for ${s.user} from ${ip} port ${port} ssh2`)
        ]))
      }
      steps.push(step(rng.int(300, 5000), stamp => [
        ...(publickey
          ? [
              line(stamp, `Accepted key ED25519 ${fp} found at /home/${s.user}/.ssh/authorized_keys:1`),
              line(stamp, `Postponed publickey for ${s.user} from ${ip} port ${port} ssh2 [preauth]`),
              line(stamp, `Accepted key ED25519 ${fp} found at /home/${s.user}/.ssh/authorized_keys:1`),
              line(stamp, `Accepted publickey for ${s.user} from ${ip} port ${port} ssh2: ED25519 ${fp}`)
            ]
          : [line(stamp, `Accepted password for ${s.user} from ${ip} port ${port} ssh2`)]),
        line(stamp, `pam_unix(sshd:session): session opened for user ${s.user}(uid=${s.uid}) by (uid=0)`),
        line(stamp, `User child is on pid ${child}`),
        s.commands.length === 0
          ? line(stamp, `Starting session: command for ${s.user} from ${ip} port ${port} id 0`, child)
          : line(stamp, `Starting session: shell on pts/${tty} for ${s.user} from ${ip} port ${port} id 0`, child)
      ]))
      if (s.commands.length > 0 && rng.chance(0.6)) {
        const cmd = rng.pick(s.commands)
        // sudo 1.9 pads the user name to 8 columns and logs without a pid.
        const sudo = (stamp: Stamp, msg: string): string => `${rfc3339Local(stamp())} ${host.name} sudo: ${msg}`
        steps.push(step(rng.int(5000, 120_000), stamp => [
          sudo(stamp, `${s.user.padStart(8)} : TTY=pts/${tty} ; PWD=/home/${s.user} ; USER=root ; COMMAND=${cmd}`),
          sudo(stamp, `pam_unix(sudo:session): session opened for user root(uid=0) by ${s.user}(uid=${s.uid})`),
          sudo(stamp, 'pam_unix(sudo:session): session closed for user root')
        ]))
      }
      steps.push(step(s.commands.length === 0 ? rng.int(20_000, 90_000) : rng.int(30_000, 600_000), stamp => [
        line(stamp, `Received disconnect from ${ip} port ${port}:11: disconnected by user`, child),
        line(stamp, `Disconnected from user ${s.user} ${ip} port ${port}`, child),
        line(stamp, `pam_unix(sshd:session): session closed for user ${s.user}`)
      ]))
      return steps
    }

    const ip = attackerIp(rng)
    if (kind === 'invalid') {
      const name = rng.pick(SCAN_USERS)
      return [
        step(0, stamp => [connect(ip)(stamp), line(stamp, `Invalid user ${name} from ${ip} port ${port}`)]),
        step(rng.int(1500, 4000), stamp => [
          line(stamp, 'pam_unix(sshd:auth): check pass; user unknown'),
          line(stamp, `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip} `),
          line(stamp, `Failed password for invalid user ${name} from ${ip} port ${port} ssh2`)
        ]),
        step(rng.int(300, 2000), stamp => [line(stamp, `Connection closed by invalid user ${name} ${ip} port ${port} [preauth]`)])
      ]
    }
    if (kind === 'probe') {
      if (rng.chance(0.5)) {
        return [step(0, stamp => [
          connect(ip)(stamp),
          line(stamp, 'error: kex_exchange_identification: Connection closed by remote host'),
          line(stamp, `Connection closed by ${ip} port ${port}`)
        ])]
      }
      return [
        step(0, stamp => [connect(ip)(stamp)]),
        step(rng.int(200, 1500), stamp => [
          line(stamp, `Received disconnect from ${ip} port ${port}:11: Bye Bye [preauth]`),
          line(stamp, `Disconnected from authenticating user root ${ip} port ${port} [preauth]`)
        ])
      ]
    }
    // A brute-force burst: several connections from one address, each up to MaxAuthTries (6) root passwords.
    const steps: Step[] = []
    const connections = rng.int(2, 5)
    for (let c = 0; c < connections; c++) {
      const cPid = c === 0 ? myPid : (pid += rng.int(1, 5))
      const cPort = c === 0 ? port : ephemeralPort(rng)
      const tries = rng.chance(0.7) ? 6 : rng.int(2, 5)
      const cl = (stamp: Stamp, msg: string): string => line(stamp, msg, cPid)
      steps.push(step(c === 0 ? 0 : rng.int(500, 3000), stamp => [
        cl(stamp, `Connection from ${ip} port ${cPort} on ${ip.includes(':') ? host.v6 : host.v4} port 22 rdomain ""`)
      ]))
      for (let t = 0; t < tries; t++) {
        steps.push(step(rng.int(1500, 3500), stamp => [
          ...(t === 0 ? [cl(stamp, `pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=root`)] : []),
          cl(stamp, `Failed password for root from ${ip} port ${cPort} ssh2`)
        ]))
      }
      steps.push(step(rng.int(200, 1500), stamp => tries === 6
        ? [
            cl(stamp, `error: maximum authentication attempts exceeded for root from ${ip} port ${cPort} ssh2 [preauth]`),
            cl(stamp, `Disconnecting authenticating user root ${ip} port ${cPort}: Too many authentication failures [preauth]`),
            cl(stamp, `PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=root`)
          ]
        : [cl(stamp, `Connection closed by authenticating user root ${ip} port ${cPort} [preauth]`)]))
    }
    return steps
  }

  return new ScriptedStream({ name: 'demo-sshd', type: 'sshd', format: 'syslog' }, 'auth.log', 0.14, false, seed, begin, 16, 900)
}

// ---------------------------------------------------------------- FTP (shared content)

interface FtpAccount { user: string, home: string, clients: string[] }

const UPLOADS = ['index.html', 'about.html', 'css/style.css', 'js/main.js', 'img/hero.jpg', 'img/team.jpg', 'img/logo.png', 'menu.pdf', 'gallery/IMG_2041.jpg', 'gallery/IMG_2042.jpg', 'wp-content/uploads/2026/11/banner.webp']
const DOWNLOADS = ['backup/site-backup.tar.gz', 'logs/access.log.1', 'index.html', 'wp-config.php', '.htaccess']
const DIRS = ['gallery/2026', 'tmp', 'archive', 'downloads', 'img/old']

function sizeOf (rng: Rng, file: string): number {
  if (/\.(tar\.gz|pdf)$/.test(file)) return rng.int(400_000, 40_000_000)
  if (/\.(jpe?g|png|webp)$/.test(file)) return rng.int(30_000, 2_500_000)
  return rng.int(300, 60_000)
}

const kbps = (rng: Rng): string => (rng.next() * 9000 + 40).toFixed(2)

// ---------------------------------------------------------------- vsftpd (vsftpd.log)

const VSFTPD_ACCOUNTS: FtpAccount[] = [
  { user: 'sunrise-bakery', home: '/srv/ftp/sunrise-bakery', clients: ['198.51.100.17', '2001:db8:4711::17'] },
  { user: 'greenleaf', home: '/srv/ftp/greenleaf', clients: ['203.0.113.45'] },
  { user: 'pixel-agency', home: '/srv/ftp/pixel-agency', clients: ['198.51.100.88', '2001:db8:88::2'] }
]

function vsftpdStream (seed: number): DemoStream {
  let pid = new Rng(deriveSeed(seed, 2000)).int(3000, 30000)

  function begin (rng: Rng): Step[] {
    const acc = rng.pick(VSFTPD_ACCOUNTS)
    const client = rng.pick(acc.clients)
    const base = (pid += rng.int(3, 30))
    // vsftpd logs CONNECT from the listener, the login from the privileged parent, file operations from the session.
    const line = (stamp: Stamp, p: number, msg: string, named = true): string =>
      `${ctimeLocal(Math.floor(stamp() / 1000))} [pid ${p}]${named ? ` [${acc.user}]` : ''} ${msg}`
    const c = `Client "${client}"`
    const steps: Step[] = [step(0, stamp => [line(stamp, base, `CONNECT: ${c}`, false)])]
    const failFirst = rng.chance(0.12)
    if (failFirst) steps.push(step(rng.int(1500, 4000), stamp => [line(stamp, base + 1, `FAIL LOGIN: ${c}`)]))
    if (failFirst && rng.chance(0.5)) return steps
    steps.push(step(rng.int(1000, 4000), stamp => [line(stamp, base + 1, `OK LOGIN: ${c}`)]))
    const ops = rng.int(1, 8)
    for (let i = 0; i < ops; i++) {
      const path = (f: string): string => `${acc.home}/htdocs/${f}`
      const op = rng.weighted<() => string>([
        [() => { const f = rng.pick(UPLOADS); return `OK UPLOAD: ${c}, "${path(f)}", ${sizeOf(rng, f)} bytes, ${kbps(rng)}Kbyte/sec` }, 38],
        [() => { const f = rng.pick(DOWNLOADS); return `OK DOWNLOAD: ${c}, "${path(f)}", ${sizeOf(rng, f)} bytes, ${kbps(rng)}Kbyte/sec` }, 20],
        [() => `OK DELETE: ${c}, "${path(rng.pick(UPLOADS))}"`, 12],
        [() => `OK MKDIR: ${c}, "${path(rng.pick(DIRS))}"`, 8],
        [() => { const f = rng.pick(UPLOADS); return `OK RENAME: ${c}, "${path(f)} ${path(f.replace(/(\.\w+)$/, '-old$1'))}"` }, 8],
        [() => `OK CHMOD: ${c}, "${path(rng.pick(UPLOADS))} ${rng.pick(['644', '640', '600'])}"`, 5],
        [() => `OK RMDIR: ${c}, "${path(rng.pick(DIRS))}"`, 4],
        [() => `FAIL DELETE: ${c}, "${path(rng.pick(UPLOADS))}"`, 3],
        [() => `FAIL MKDIR: ${c}, "${path(rng.pick(DIRS))}"`, 2]
      ])
      const msg = op()
      steps.push(step(rng.int(1500, 30_000), stamp => [line(stamp, base + 2, msg)]))
    }
    return steps
  }

  return new ScriptedStream({ name: 'demo-vsftpd', type: 'vsftpd', format: 'native' }, 'vsftpd.log', 0.1, false, seed, begin, 12)
}

// ---------------------------------------------------------------- pure-ftpd (syslog, run with -d -d)

const PURE_ACCOUNTS: FtpAccount[] = [
  { user: 'velo-club', home: '/home/ftpusers/velo-club', clients: ['198.51.100.61', '2001:db8:4713::61'] },
  { user: 'greenleaf-shop', home: '/home/ftpusers/greenleaf-shop', clients: ['203.0.113.45', '203.0.113.46'] }
]

function pureFtpdStream (seed: number): DemoStream {
  let pid = new Rng(deriveSeed(seed, 3000)).int(3000, 30000)

  function begin (rng: Rng): Step[] {
    const acc = rng.pick(PURE_ACCOUNTS)
    const ip = rng.pick(acc.clients)
    const myPid = (pid += rng.int(2, 40))
    let who = '?'
    let up = 0
    let down = 0
    const line = (stamp: Stamp, level: string, msg: string): string => {
      const us = stamp()
      return `${rfc3339Local(us)} ftp02 pure-ftpd[${myPid}]: (${who}@${ip}) [${level}] ${msg}`
    }
    const dbg = (stamp: Stamp, msg: string): string => line(stamp, 'DEBUG', msg)
    const steps: Step[] = [step(0, stamp => {
      const local = new Date(Math.floor(stamp() / 1000))
      return [
        line(stamp, 'INFO', `New connection from ${ip}`),
        dbg(stamp, '220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------'),
        dbg(stamp, `220-You are user number ${rng.int(1, 6)} of 50 allowed.`),
        dbg(stamp, `220-Local time is now ${p2(local.getHours())}:${p2(local.getMinutes())}. Server port: 21.`),
        dbg(stamp, '220-This is a private system - No anonymous login'),
        dbg(stamp, '220 You will be disconnected after 15 minutes of inactivity.')
      ]
    })]
    const fails = rng.chance(0.12)
    const name = fails && rng.chance(0.4) ? acc.user.replace('-', '') : acc.user
    steps.push(step(rng.int(500, 2500), stamp => {
      const head = [dbg(stamp, `Command [user] [${name}]`), dbg(stamp, `331 User ${name} OK. Password required`), dbg(stamp, 'Command [pass] [<*>]')]
      if (fails) {
        return [...head, dbg(stamp, '530 Login authentication failed'), line(stamp, 'WARNING', `Authentication failed for user [${name}]`),
          dbg(stamp, 'Command [quit] []'), line(stamp, 'INFO', 'Logout.'), dbg(stamp, '221 Logout.')]
      }
      const out = [...head, line(stamp, 'INFO', `${acc.user} is now logged in`)]
      who = acc.user
      return [...out, dbg(stamp, `230 OK. Current directory is ${acc.home}`), dbg(stamp, 'Command [type] [I]'), dbg(stamp, '200 TYPE is now 8-bit binary')]
    }))
    if (fails) return steps
    const ops = rng.int(1, 7)
    for (let i = 0; i < ops; i++) {
      const kind = rng.weighted([['stor', 35], ['retr', 20], ['dele', 12], ['mkd', 8], ['rmd', 4], ['rename', 8], ['chmod', 5], ['delefail', 5], ['mkdfail', 3]] as const)
      const f = kind === 'retr' ? rng.pick(DOWNLOADS) : rng.pick(UPLOADS)
      const d = rng.pick(DIRS)
      const size = sizeOf(rng, f)
      const rate = kbps(rng)
      const pasv = `229 Extended Passive mode OK (|||${rng.int(30000, 50000)}|)`
      steps.push(step(rng.int(1000, 20_000), stamp => {
        switch (kind) {
          case 'stor':
          case 'retr':
            if (kind === 'stor') up += Math.round(size / 1024); else down += Math.round(size / 1024)
            return [dbg(stamp, 'Command [epsv] []'), dbg(stamp, pasv), dbg(stamp, `Command [${kind}] [${f}]`), dbg(stamp, '150 Accepted data connection'),
              line(stamp, 'NOTICE', `/${acc.home}/${f} ${kind === 'stor' ? 'uploaded' : 'downloaded'}  (${size} bytes, ${rate}KB/sec)`),
              dbg(stamp, '226-File successfully transferred'), dbg(stamp, `226 ${(size / 1024 / Number(rate)).toFixed(3)} seconds (measured here), ${rate} Kbytes per second`)]
          case 'dele':
            return [dbg(stamp, `Command [dele] [${f}]`), line(stamp, 'NOTICE', `Deleted /${acc.home}/${f}`), dbg(stamp, `250 Deleted ${f}`)]
          case 'delefail':
            return [dbg(stamp, `Command [dele] [${f}]`), dbg(stamp, `550 Could not delete ${f}: No such file or directory`)]
          case 'mkd':
            return [dbg(stamp, `Command [mkd] [${d}]`), dbg(stamp, `257 "${d}" : The directory was successfully created`)]
          case 'mkdfail':
            return [dbg(stamp, `Command [mkd] [${d}]`), dbg(stamp, '550 Can\'t create directory: File exists')]
          case 'rmd':
            return [dbg(stamp, `Command [rmd] [${d}]`), dbg(stamp, '250 The directory was successfully removed')]
          case 'rename': {
            const to = f.replace(/(\.\w+)$/, '-v2$1')
            return [dbg(stamp, `Command [rnfr] [${f}]`), dbg(stamp, '350 RNFR accepted - file exists, ready for destination'), dbg(stamp, `Command [rnto] [${to}]`),
              line(stamp, 'NOTICE', `File successfully renamed or moved: [${f}]->[${to}]`), dbg(stamp, '250 File successfully renamed or moved')]
          }
          case 'chmod':
            return [dbg(stamp, `Command [site] [CHMOD 644 ${f}]`), dbg(stamp, `200 Permissions changed on ${f}`)]
        }
      }))
    }
    steps.push(step(rng.int(1000, 10_000), stamp => [
      dbg(stamp, 'Command [quit] []'), line(stamp, 'INFO', 'Logout.'),
      dbg(stamp, `221-Goodbye. You uploaded ${up} and downloaded ${down} kbytes.`), dbg(stamp, '221 Logout.')
    ]))
    return steps
  }

  return new ScriptedStream({ name: 'demo-pure-ftpd', type: 'pure-ftpd', format: 'syslog' }, 'pure-ftpd.log', 0.14, false, seed, begin, 12)
}

// ---------------------------------------------------------------- customers, shared by the databases and the web sites

/** The demo's hosting customers and their sites (for tenants in the query API's config). */
export const DEMO_SITES = [
  { customer: 'cust-4711', prefix: 'c4711', site: 'www.sunrise-bakery.example', label: 'bakery' },
  { customer: 'cust-4712', prefix: 'c4712', site: 'shop.greenleaf-florist.example', label: 'florist' },
  { customer: 'cust-4713', prefix: 'c4713', site: 'blog.velo-club.example', label: 'velo' }
] as const

const DB_SUFFIXES = ['wp', 'shop', 'blog', 'stage', 'crm']

// ---------------------------------------------------------------- MariaDB (server_audit file)

/** server_audit's escape_string(): the statement as it appears between the quotes of a QUERY record. */
export function escapeAudit (sql: string): string {
  return sql.replace(/[\\'\n\t\r]/g, c => c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\${c}`)
}

function mariadbStream (seed: number): DemoStream {
  const init = new Rng(deriveSeed(seed, 4000))
  let conn = init.int(1000, 9000)
  let query = init.int(10_000, 90_000)
  let created = 0

  function begin (rng: Rng): Step[] {
    const id = (conn += rng.int(1, 12))
    const cust = rng.pick(DEMO_SITES)
    const kind = rng.weighted<'app' | 'provision' | 'deprovision' | 'staff' | 'badlogin'>([['app', 40], ['provision', 20], ['deprovision', 10], ['staff', 18], ['badlogin', 12]])
    const user = kind === 'staff' ? rng.pick(['alice.admin', 'carol.dev']) : kind === 'provision' || kind === 'deprovision' ? 'panel' : `${cust.prefix}_${rng.pick(DB_SUFFIXES)}`
    const host = kind === 'staff' ? 'localhost' : kind === 'app' || kind === 'badlogin' ? rng.pick(['10.10.0.11', '10.10.0.12']) : '10.10.0.5'
    const rec = (stamp: Stamp, rest: string, q = 0): string => `${mariadbUtc(Math.floor(stamp() / 1000))},db01,${user},${host},${id},${q},${rest}`
    const sql = (db: string, statement: string, ret = 0) => (stamp: Stamp): string => rec(stamp, `QUERY,${db},'${escapeAudit(statement)}',${ret}`, (query += 1))
    const gap = (): number => rng.int(50, 1500)

    if (kind === 'app') {
      return [step(0, stamp => [rec(stamp, `CONNECT,${user},,0`)]), step(rng.int(200, 60_000), stamp => [rec(stamp, `DISCONNECT,${user},,0`)])]
    }
    if (kind === 'badlogin') {
      return [step(0, stamp => [rec(stamp, `FAILED_CONNECT,${user},,1045`), rec(stamp, 'DISCONNECT,,,0')])]
    }
    const steps: Step[] = [step(0, stamp => [rec(stamp, 'CONNECT,,,0')])]
    const add = (f: (stamp: Stamp) => string): void => { steps.push(step(gap(), stamp => [f(stamp)])) }
    if (kind === 'provision') {
      const db = `${cust.prefix}_${rng.pick(DB_SUFFIXES)}${(created += 1)}`
      const account = `'${db}'@'10.10.0.%'`
      add(sql('', `CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`, rng.chance(0.05) ? 1007 : 0))
      add(sql('', `CREATE USER ${account} IDENTIFIED BY *****`))
      add(sql('', `GRANT ALL PRIVILEGES ON \`${db}\`.* TO ${account}`))
    } else if (kind === 'deprovision') {
      const db = `${cust.prefix}_old${rng.int(1, 40)}`
      const missing = rng.chance(0.1)
      add(sql('', `DROP DATABASE \`${db}\``, missing ? 1008 : 0))
      add(sql('', `DROP USER '${db}'@'10.10.0.%'`, missing ? 1396 : 0))
    } else {
      const db = `${cust.prefix}_${rng.pick(DB_SUFFIXES)}`
      const account = `'${db}'@'10.10.0.%'`
      const work = rng.weighted<string[]>([
        [[`ALTER USER ${account} IDENTIFIED BY *****`], 3],
        [[`GRANT SELECT ON \`${db}\`.* TO 'report'@'10.10.0.%'`], 2],
        [[`REVOKE INSERT, UPDATE ON \`${db}\`.* FROM ${account}`], 1],
        [[`CREATE TABLE \`${db}\`.\`wp_audit_tmp\` (id int NOT NULL, note text)`, `DROP TABLE \`${db}\`.\`wp_audit_tmp\``], 2]
      ])
      for (const w of work) add(sql(db, w))
    }
    steps.push(step(gap(), stamp => [rec(stamp, 'DISCONNECT,,,0')]))
    return steps
  }

  return new ScriptedStream({ name: 'demo-mariadb', type: 'mariadb-audit', format: 'file', options: { timezone: 'UTC' } }, 'mariadb-audit.log', 0.07, false, seed, begin, 12)
}

// ---------------------------------------------------------------- PostgreSQL (stderr)

/** The `log_line_prefix` the demo's PostgreSQL lines carry (PostgreSQL 15's default), with `log_timezone = 'UTC'`. */
export const PG_LOG_LINE_PREFIX = '%m [%p] %q%u@%d %r '

const PG_HBA = '/etc/postgresql/15/main/pg_hba.conf'

function sessionTime (us: number): string {
  const ms = Math.max(0, Math.round(us / 1000))
  const h = Math.floor(ms / 3_600_000)
  return `${h}:${p2(Math.floor(ms / 60_000) % 60)}:${p2(Math.floor(ms / 1000) % 60)}.${String(ms % 1000).padStart(3, '0')}`
}

function postgresqlStream (seed: number): DemoStream {
  const init = new Rng(deriveSeed(seed, 5000))
  let pid = init.int(2000, 30000)
  let created = 0

  function begin (rng: Rng): Step[] {
    const myPid = (pid += rng.int(2, 30))
    const cust = rng.pick(DEMO_SITES)
    const kind = rng.weighted<'app' | 'provision' | 'deprovision' | 'staff' | 'badlogin'>([['app', 38], ['provision', 20], ['deprovision', 10], ['staff', 17], ['badlogin', 15]])
    const local = kind === 'staff' && rng.chance(0.5)
    const user = kind === 'staff' ? (local ? 'postgres' : 'bob.ops') : kind === 'provision' || kind === 'deprovision' ? 'panel' : `${cust.prefix}_${rng.pick(DB_SUFFIXES)}`
    const db = kind === 'app' || kind === 'badlogin' ? user : 'postgres'
    const host = local ? '[local]' : kind === 'staff' ? rng.pick(['192.0.2.23', '2001:db8:20::23']) : kind === 'app' || kind === 'badlogin' ? rng.pick(['10.10.0.11', '10.10.0.12']) : '10.10.0.5'
    const port = ephemeralPort(rng)
    const remote = local ? '[local]' : `${host}(${port})`
    const hostPort = local ? 'host=[local]' : `host=${host} port=${port}`
    let start = 0
    /** `msg` may depend on the line's own time (the session time of `disconnection:`). */
    const line = (stamp: Stamp, who: string, severity: string, msg: string | ((us: number) => string)): string => {
      const us = stamp()
      if (start === 0) start = us
      return `${pgUtc(Math.floor(us / 1000))} [${myPid}] ${who} ${remote} ${severity}:  ${typeof msg === 'string' ? msg : msg(us)}`
    }
    const as = `${user}@${db}`
    const log = (stamp: Stamp, msg: string): string => line(stamp, as, 'LOG', msg)
    const received = (stamp: Stamp): string => line(stamp, '[unknown]@[unknown]', 'LOG', `connection received: ${hostPort}`)

    if (kind === 'badlogin') {
      return [step(0, stamp => [
        received(stamp),
        line(stamp, as, 'FATAL', `password authentication failed for user "${user}"`),
        line(stamp, as, 'DETAIL', 'Connection matched pg_hba.conf line 102: "host    all             all             10.10.0.0/24            scram-sha-256"')
      ])]
    }
    const steps: Step[] = [step(0, stamp => [
      received(stamp),
      log(stamp, `connection authenticated: identity="${user}" method=${local ? 'peer' : 'scram-sha-256'} (${PG_HBA}:${local ? 90 : 102})`),
      log(stamp, `connection authorized: user=${user} database=${db} application_name=${kind === 'app' ? 'PostgreSQL JDBC Driver' : 'psql'}`)
    ])]
    const gap = (): number => rng.int(80, 4000)
    const statement = (sql: string, error?: string): void => {
      steps.push(step(gap(), stamp => [
        log(stamp, `statement: ${sql}`),
        ...(error === undefined ? [] : [line(stamp, as, 'ERROR', error), line(stamp, as, 'STATEMENT', sql)])
      ]))
    }
    if (kind === 'provision') {
      const name = `${cust.prefix}_${rng.pick(DB_SUFFIXES)}${(created += 1)}`
      const exists = rng.chance(0.05)
      statement(`CREATE DATABASE ${name};`, exists ? `database "${name}" already exists` : undefined)
      statement(`CREATE ROLE ${name} LOGIN PASSWORD '${rng.chars(16, B64.slice(0, 62))}';`)
      statement(`GRANT ALL PRIVILEGES ON DATABASE ${name} TO ${name};`)
      statement(`ALTER DATABASE ${name} OWNER TO ${name};`)
    } else if (kind === 'deprovision') {
      const name = `${cust.prefix}_old${rng.int(1, 40)}`
      const missing = rng.chance(0.1)
      statement(`DROP DATABASE ${name};`, missing ? `database "${name}" does not exist` : undefined)
      statement(`DROP ROLE ${name};`, missing ? `role "${name}" does not exist` : undefined)
    } else if (kind === 'staff') {
      const name = `${cust.prefix}_${rng.pick(DB_SUFFIXES)}`
      const sql = rng.pick([
        `ALTER ROLE ${name} CONNECTION LIMIT 20;`,
        `GRANT CONNECT ON DATABASE ${name} TO report;`,
        'REVOKE CREATE ON SCHEMA public FROM PUBLIC;',
        `CREATE SCHEMA IF NOT EXISTS archive AUTHORIZATION ${name};`
      ])
      statement(sql)
    }
    steps.push(step(kind === 'app' ? rng.int(500, 120_000) : gap(), stamp => [
      line(stamp, as, 'LOG', us => `disconnection: session time: ${sessionTime(us - start)} user=${user} database=${db} ${hostPort}`)
    ]))
    return steps
  }

  return new ScriptedStream({ name: 'demo-postgresql', type: 'postgresql', format: 'stderr', options: { logLinePrefix: PG_LOG_LINE_PREFIX } }, 'postgresql.log', 0.09, false, seed, begin, 12)
}

// ---------------------------------------------------------------- nginx access logs (combined), one per site

interface SiteProfile {
  pages: string[]
  /** A page that answers 301 without its trailing slash. */
  slashless: string
  css: string[]
  js: string[]
  img: string[]
  search: string[]
  /** A form: POST answers 302 to the thank-you page. */
  form: { post: string, thanks: string }
  /** An endpoint that now and then fails upstream (502/504). */
  api: string
}

const PROFILES: Record<typeof DEMO_SITES[number]['label'], SiteProfile> = {
  bakery: {
    pages: ['/', '/bread/', '/cakes/', '/opening-hours/', '/about/', '/contact/', '/bread/sourdough-rye/', '/cakes/plum-crumble/'],
    slashless: '/opening-hours',
    css: ['/assets/css/site.css?v=3.2'],
    js: ['/assets/js/site.js?v=3.2'],
    img: ['/assets/img/hero-loaves.jpg', '/assets/img/logo.svg', '/assets/img/shop-front.webp', '/assets/img/rye.jpg'],
    search: ['rye+bread', 'gluten+free', 'birthday+cake', 'opening+hours+sunday'],
    form: { post: '/contact/', thanks: '/contact/thanks/' },
    api: '/api/preorder'
  },
  florist: {
    pages: ['/', '/bouquets/', '/bouquets/roses-classic', '/bouquets/autumn-mix', '/weddings/', '/cart/', '/checkout/', '/delivery/'],
    slashless: '/weddings',
    css: ['/static/shop.min.css'],
    js: ['/static/shop.min.js', '/static/vendor/alpine.min.js'],
    img: ['/media/products/roses-classic-400.webp', '/media/products/autumn-mix-400.webp', '/media/banner-weddings.jpg', '/favicon.ico'],
    search: ['tulips', 'same+day+delivery', 'wedding+bouquet', 'sunflowers'],
    form: { post: '/cart/add', thanks: '/cart/' },
    api: '/api/cart'
  },
  velo: {
    pages: ['/', '/2026/11/autumn-ride-report/', '/2026/10/new-club-jerseys/', '/routes/', '/routes/river-loop/', '/events/', '/join/', '/feed/'],
    slashless: '/routes',
    css: ['/wp-content/themes/velo/style.css?ver=6.6.2'],
    js: ['/wp-includes/js/jquery/jquery.min.js?ver=3.7.1', '/wp-content/themes/velo/js/menu.js?ver=6.6.2'],
    img: ['/wp-content/uploads/2026/11/ride-group.jpg', '/wp-content/uploads/2026/10/jerseys.jpg', '/wp-content/uploads/2026/11/map-river-loop.png', '/favicon.ico'],
    search: ['river+loop', 'saturday+ride', 'membership+fee'],
    form: { post: '/wp-comments-post.php', thanks: '/2026/11/autumn-ride-report/#comment-412' },
    api: '/wp-json/wp/v2/posts'
  }
}

const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
]

const BOTS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
  'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
  'Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)'
]

const SCANNERS = ['python-requests/2.32.3', 'Mozilla/5.0 zgrab/0.x', 'curl/7.88.1', 'Go-http-client/1.1']
const PROBES = ['/wp-login.php', '/.env', '/xmlrpc.php', '/phpmyadmin/', '/.git/config', '/admin/config.php', '/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php']
const REFERRERS = ['https://www.google.com/', 'https://duckduckgo.com/', 'https://www.bing.com/', 'https://news.example.net/local/2026/11/', 'https://social.example.org/@velo_fan/113450']

function bodyBytes (rng: Rng, path: string): number {
  if (/\.(jpe?g|webp|png)(\?|$)/.test(path)) return rng.int(18_000, 420_000)
  if (/\.(css|js)(\?|$)/.test(path)) return rng.int(9_000, 160_000)
  if (/\.(svg|ico)(\?|$)/.test(path)) return rng.int(900, 15_000)
  return rng.int(6_000, 48_000)
}

function webStream (seed: number, index: number): DemoStream {
  const site = DEMO_SITES[index] as typeof DEMO_SITES[number]
  const prof = PROFILES[site.label]
  const origin = `https://${site.site}`

  function begin (rng: Rng): Step[] {
    const kind = rng.weighted<'human' | 'bot' | 'scanner'>([['human', 78], ['bot', 15], ['scanner', 7]])
    const ip = kind === 'scanner' ? attackerIp(rng) : visitorIp(rng)
    const ua = kind === 'human' ? rng.pick(BROWSERS) : kind === 'bot' ? rng.pick(BOTS) : rng.pick(SCANNERS)
    const h2 = kind === 'human' && rng.chance(0.6)
    const req = (stamp: Stamp, method: string, target: string, status: number, bytes: number, referrer = '-'): string =>
      `${ip} - - [${nginxLocal(Math.floor(stamp() / 1000))}] "${method} ${target} HTTP/${h2 ? '2.0' : '1.1'}" ${status} ${bytes} "${referrer}" "${ua}"`

    if (kind === 'scanner') {
      const steps: Step[] = []
      for (let i = rng.int(1, 3); i > 0; i--) {
        const probes = Array.from({ length: rng.int(2, 5) }, () => rng.pick(PROBES))
        steps.push(step(rng.int(500, 8000), stamp => probes.map(p => req(stamp, rng.chance(0.2) ? 'POST' : 'GET', p, rng.chance(0.1) ? 403 : 404, rng.int(150, 560)))))
      }
      return steps
    }
    if (kind === 'bot') {
      if (ua.includes('UptimeRobot')) return [step(0, stamp => [req(stamp, 'HEAD', '/', 200, 0)])]
      const steps: Step[] = [step(0, stamp => [req(stamp, 'GET', '/robots.txt', 200, rng.int(60, 400))])]
      steps.push(step(rng.int(500, 5000), stamp => [req(stamp, 'GET', '/sitemap.xml', 200, rng.int(1500, 9000))]))
      for (let i = rng.int(1, 4); i > 0; i--) {
        const page = rng.pick(prof.pages)
        steps.push(step(rng.int(1000, 20_000), stamp => [req(stamp, 'GET', page, rng.chance(0.05) ? 404 : 200, bodyBytes(rng, page))]))
      }
      return steps
    }

    // A human visit: an entry page with its assets, then a few more pages (assets mostly cached: 304).
    let referrer = rng.chance(0.55) ? rng.pick(REFERRERS) : '-'
    const pages = rng.int(1, 6)
    const steps: Step[] = []
    for (let i = 0; i < pages; i++) {
      const first = i === 0
      const moment = rng.weighted<'page' | 'slashless' | 'search' | 'form' | 'api' | 'broken'>([['page', 70], ['slashless', 6], ['search', 8], ['form', 6], ['api', 6], ['broken', 4]])
      const page = rng.pick(prof.pages)
      const utm = first && referrer.includes('social.') ? '?utm_source=social&utm_medium=post' : ''
      steps.push(step(first ? 0 : rng.int(4000, 90_000), stamp => {
        const out: string[] = []
        let shown = page
        const ref = referrer
        switch (moment) {
          case 'slashless':
            out.push(req(stamp, 'GET', prof.slashless, 301, 169, ref))
            shown = `${prof.slashless}/`
            out.push(req(stamp, 'GET', shown, 200, bodyBytes(rng, shown), ref))
            break
          case 'search':
            shown = `/search?q=${rng.pick(prof.search)}`
            out.push(req(stamp, 'GET', shown, 200, bodyBytes(rng, shown), ref))
            break
          case 'form':
            out.push(req(stamp, 'POST', prof.form.post, 302, 0, ref))
            shown = prof.form.thanks
            out.push(req(stamp, 'GET', shown, 200, bodyBytes(rng, shown), `${origin}${prof.form.post}`))
            break
          case 'api': {
            const status = rng.weighted([[200, 85], [502, 8], [504, 4], [500, 3]] as const)
            out.push(req(stamp, rng.chance(0.5) ? 'POST' : 'GET', prof.api, status, status === 200 ? rng.int(80, 4000) : rng.int(150, 600), ref))
            return out
          }
          case 'broken':
            out.push(req(stamp, 'GET', `${page}old-link`, 404, rng.int(3000, 9000), ref))
            return out
          default:
            shown = page + utm
            out.push(req(stamp, 'GET', shown, 200, bodyBytes(rng, shown), ref))
        }
        const here = `${origin}${shown}`
        for (const a of [...prof.css, ...prof.js]) out.push(first ? req(stamp, 'GET', a, 200, bodyBytes(rng, a), here) : req(stamp, 'GET', a, 304, 0, here))
        for (const a of prof.img) if (first || rng.chance(0.3)) out.push(req(stamp, 'GET', a, 200, bodyBytes(rng, a), here))
        referrer = here
        return out
      }))
    }
    return steps
  }

  return new ScriptedStream({ name: `demo-web-${site.label}`, type: 'web-access', format: 'combined', options: { vhost: site.site } },
    `${site.site}.access.log`, 0.46 / DEMO_SITES.length, true, seed, begin, 40, 40_000)
}

// ---------------------------------------------------------------- all streams

/** Every demo stream, each with its own seed derived from `seed`: sshd, vsftpd, pure-ftpd, MariaDB, PostgreSQL, 3 web sites. */
export function createDemoStreams (seed: number): DemoStream[] {
  return [
    sshdStream(deriveSeed(seed, 0)),
    vsftpdStream(deriveSeed(seed, 1)),
    pureFtpdStream(deriveSeed(seed, 2)),
    mariadbStream(deriveSeed(seed, 3)),
    postgresqlStream(deriveSeed(seed, 4)),
    ...DEMO_SITES.map((_, i) => webStream(deriveSeed(seed, 5 + i), i))
  ]
}
