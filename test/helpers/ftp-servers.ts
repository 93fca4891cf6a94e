/**
 * Real FTP servers for the tests, each on free loopback ports with its own config and log files in a temp
 * dir. vsftpd comes from apt (.ci/apt-packages.txt). proftpd and pure-ftpd conflict with it as Debian
 * packages (each provides ftp-server), so their .deb files (and the libraries they need that are not
 * installed) are fetched with `apt-get download` into .cache/debs/ and unpacked with `dpkg -x` into
 * .cache/ftp/<package>/, once (design §8).
 *
 * pure-ftpd logs sessions only through syslog(3), i.e. to /dev/log, and this machine runs no syslog
 * daemon. So pure-ftpd runs in a private mount namespace (`unshare -m`) whose /dev is a tmpfs holding
 * the real device nodes plus a /dev/log owned by a real rsyslogd started in that namespace: the host's
 * /dev is never touched, and the lines are exactly what rsyslog writes on a Debian 12 host.
 *
 * All servers run as root (they drop privileges per session themselves) and authenticate a throwaway
 * local system user (FTP_USER) through the normal Unix account database.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { access, mkdir, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises'
import { connect } from 'node:net'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './net.ts'

const run = promisify(execFile)

const ROOT = resolve(import.meta.dirname, '..', '..')
const DEBS = join(ROOT, '.cache', 'debs')
const UNPACKED = join(ROOT, '.cache', 'ftp')

export const FTP_USER = 'auditline-ftp'
export const FTP_PASSWORD = 'Ftp-test-pw-7'
export const FTP_HOME = `/home/${FTP_USER}`

/**
 * Packages to unpack per server: the server itself first, then the shared libraries its binary links
 * that Debian 12 does not install by default (each unpacked only when dpkg says it is not installed).
 */
const PACKAGES = {
  proftpd: ['proftpd-core', 'libhiredis0.14', 'libmemcached11', 'libmemcachedutil2', 'libhashkit2', 'libpcre2-posix3'],
  'pure-ftpd': ['pure-ftpd', 'libsodium23']
} as const

export type UnpackedServer = keyof typeof PACKAGES

async function exists (p: string): Promise<boolean> {
  try { await access(p); return true } catch { return false }
}

async function installed (pkg: string): Promise<boolean> {
  try {
    // dpkg-query's own ${Status} field, not a template.
    const { stdout } = await run('dpkg-query', ['-W', '-f=$' + '{Status}', pkg])
    return stdout.includes('install ok installed')
  } catch { return false }
}

async function download (pkg: string): Promise<string> {
  await mkdir(DEBS, { recursive: true })
  const have = async (): Promise<string | undefined> => (await readdir(DEBS)).find(f => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
  const cached = await have()
  if (cached !== undefined) return join(DEBS, cached)
  try {
    await run('apt-get', ['download', pkg], { cwd: DEBS })
  } catch {
    // A fresh machine may have no package lists yet.
    await run('apt-get', ['update', '-qq'])
    await run('apt-get', ['download', pkg], { cwd: DEBS })
  }
  const got = await have()
  if (got === undefined) throw new Error(`apt-get download ${pkg} left no .deb in ${DEBS}`)
  return join(DEBS, got)
}

export interface Unpacked { root: string, env: NodeJS.ProcessEnv }

/** Unpacks the server's packages into .cache/ftp/<server>/ (idempotent) and checks its binary links. */
export async function unpack (server: UnpackedServer): Promise<Unpacked> {
  const root = join(UNPACKED, server)
  const marker = join(root, '.unpacked')
  if (!await exists(marker)) {
    await rm(root, { recursive: true, force: true })
    await mkdir(root, { recursive: true })
    const [main, ...libs] = PACKAGES[server]
    for (const pkg of [main, ...libs]) {
      if (pkg !== main && await installed(pkg)) continue
      await run('dpkg', ['-x', await download(pkg), root])
    }
    await writeFile(marker, new Date().toISOString() + '\n')
  }
  const usrLib = join(root, 'usr', 'lib')
  const libDirs = (await exists(usrLib) ? await readdir(usrLib) : []).filter(d => d.endsWith('-linux-gnu')).map(d => join(usrLib, d))
  const env = { ...process.env, LD_LIBRARY_PATH: libDirs.join(':') }
  const bin = join(root, 'usr', 'sbin', server)
  const { stdout } = await run('ldd', [bin], { env })
  const missing = stdout.split('\n').filter(l => l.includes('not found'))
  if (missing.length > 0) throw new Error(`${bin} misses libraries (add their packages to PACKAGES in test/helpers/ftp-servers.ts): ${missing.join('; ')}`)
  return { root, env }
}

/** Creates the throwaway FTP login once (idempotent) and empties its home. */
export async function ensureFtpUser (): Promise<void> {
  try {
    await run('id', [FTP_USER])
  } catch {
    await run('useradd', ['--create-home', '--home-dir', FTP_HOME, '--shell', '/bin/bash', '--comment', 'auditline FTP test user', FTP_USER])
  }
  const child = spawn('chpasswd', { stdio: ['pipe', 'ignore', 'pipe'] })
  child.stdin.end(`${FTP_USER}:${FTP_PASSWORD}\n`)
  const [code] = await new Promise<[number | null]>(resolve => child.on('close', c => { resolve([c]) }))
  if (code !== 0) throw new Error(`chpasswd for ${FTP_USER} failed with ${String(code)}`)
  for (const f of await readdir(FTP_HOME)) if (!f.startsWith('.')) await rm(join(FTP_HOME, f), { recursive: true, force: true })
}

export interface RunningFtp {
  readonly server: 'vsftpd' | 'proftpd' | 'pure-ftpd'
  /** Where clients connect: one IPv4 and one IPv6 loopback endpoint. */
  readonly v4: { host: string, port: number }
  readonly v6: { host: string, port: number }
  /** Log files by format name (`xferlog`, `native`, `extended`, `syslog`, `stats`). */
  readonly logs: Readonly<Record<string, string>>
  /** What the server wrote to stdout/stderr (for failure messages). */
  output (): string
  stop (): Promise<void>
}

interface Proc {
  child: ChildProcess
  out: string[]
  /** Set for a server that daemonizes (own session and process group): where it writes its pid. */
  pidFile?: string
}

function start (cmd: string, args: string[], env?: NodeJS.ProcessEnv, pidFile?: string): Proc {
  // Own process group, so that stop() reaches every process the server (or its wrapper script) forked.
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env }) })
  const out: string[] = []
  child.stdout?.on('data', (c: Buffer) => out.push(String(c)))
  child.stderr?.on('data', (c: Buffer) => out.push(String(c)))
  return { child, out, ...(pidFile === undefined ? {} : { pidFile }) }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** SIGTERM to the process group `pgid`, SIGKILL after 3 s, and waits until its leader is gone. */
async function stopGroup (pgid: number): Promise<void> {
  try { process.kill(-pgid, 'SIGTERM') } catch { return }
  const until = Date.now() + 3000
  while (alive(pgid) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 50))
  // Session processes may outlive the master for a moment; make sure none is left.
  try { process.kill(-pgid, 'SIGKILL') } catch { /* none left */ }
  while (alive(pgid)) await new Promise(resolve => setTimeout(resolve, 20))
}

async function stopProc (p: Proc): Promise<void> {
  if (p.pidFile !== undefined) {
    // A daemon called setsid(): its pid is also its process group id.
    const pid = Number((await readFile(p.pidFile, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(pid) && pid > 1) await stopGroup(pid)
  }
  const pid = p.child.pid
  if (pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return
  const exited = new Promise<void>(resolve => p.child.once('exit', () => { resolve() }))
  await stopGroup(pid)
  await exited
}

/** Waits until the server answers with its 220 greeting on host:port. */
async function waitReady (host: string, port: number, procs: Proc[], timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ host, port })
      s.setTimeout(1000)
      s.once('data', (d: Buffer) => { s.destroy(); resolve(String(d).startsWith('220')) })
      s.once('error', () => { resolve(false) })
      s.once('timeout', () => { s.destroy(); resolve(false) })
    })
    if (ok) return
    const dead = procs.find(p => p.child.exitCode !== null && p.child.exitCode !== 0)
    if (dead !== undefined || Date.now() > until) {
      throw new Error(`FTP server on [${host}]:${port} did not start: ${procs.flatMap(p => p.out).join('').slice(-2000)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

function running (server: RunningFtp['server'], procs: Proc[], v4: number, v6: number, logs: Record<string, string>): RunningFtp {
  return {
    server,
    v4: { host: '127.0.0.1', port: v4 },
    v6: { host: '::1', port: v6 },
    logs,
    output: () => procs.flatMap(p => p.out).join(''),
    async stop () { await Promise.all(procs.map(stopProc)) }
  }
}

async function startAll (server: RunningFtp['server'], specs: Array<{ cmd: string, args: string[], env?: NodeJS.ProcessEnv, pidFile?: string }>, v4: number, v6: number, logs: Record<string, string>): Promise<RunningFtp> {
  const procs = specs.map(s => start(s.cmd, s.args, s.env, s.pidFile))
  const r = running(server, procs, v4, v6, logs)
  try {
    await waitReady('127.0.0.1', v4, procs)
    await waitReady('::1', v6, procs)
  } catch (err) {
    await r.stop()
    throw err
  }
  return r
}

/**
 * vsftpd 3.0.3 from Debian: two instances (vsftpd listens either on one IPv4 or one IPv6 address) that
 * append to the same xferlog (`xferlog_std_format=YES`) and vsftpd.log (`dual_log_enable=YES`, with
 * `log_ftp_protocol=YES`).
 */
export async function startVsftpd (dir: string): Promise<RunningFtp> {
  await mkdir(join(dir, 'empty'), { recursive: true })
  await chmod(join(dir, 'empty'), 0o755)
  const logs = { xferlog: join(dir, 'xferlog'), native: join(dir, 'vsftpd.log') }
  const common = [
    'background=NO', 'anonymous_enable=NO', 'local_enable=YES', 'write_enable=YES', 'local_umask=022',
    'xferlog_enable=YES', 'xferlog_std_format=YES', `xferlog_file=${logs.xferlog}`,
    'dual_log_enable=YES', `vsftpd_log_file=${logs.native}`, 'log_ftp_protocol=YES', 'syslog_enable=NO',
    `secure_chroot_dir=${join(dir, 'empty')}`, 'pam_service_name=vsftpd', 'connect_from_port_20=NO',
    // No seccomp filter and no network/pid namespaces of its own: they fail in some containers.
    'seccomp_sandbox=NO', 'isolate=NO', 'isolate_network=NO',
    'utf8_filesystem=YES'
  ]
  const v4 = await freePort()
  const v6 = await freePort()
  const conf4 = join(dir, 'vsftpd-v4.conf')
  const conf6 = join(dir, 'vsftpd-v6.conf')
  await writeFile(conf4, [...common, 'listen=YES', 'listen_address=127.0.0.1', `listen_port=${v4}`].join('\n') + '\n')
  await writeFile(conf6, [...common, 'listen=NO', 'listen_ipv6=YES', 'listen_address6=::1', `listen_port=${v6}`].join('\n') + '\n')
  return await startAll('vsftpd', [{ cmd: '/usr/sbin/vsftpd', args: [conf4] }, { cmd: '/usr/sbin/vsftpd', args: [conf6] }], v4, v6, logs)
}

/**
 * The ExtendedLog format the proftpd collector expects (`format: extended`), documented in
 * docs/sources/ftp.md: tab-separated (a tab never occurs in the other fields, and paths with spaces stay
 * one field); local time with milliseconds followed by the UTC offset.
 */
export const PROFTPD_LOGFORMAT = 'LogFormat auditline "%{iso8601}%{%z}t\t%a\t%U\t%u\t%m\t%f\t%w\t%b\t%s\t%{transfer-status}\t%P\t%{protocol}"'

/**
 * A shell script, run under `unshare --mount`, that gives the server a private /dev holding the real
 * device nodes plus a /dev/log served by a real rsyslogd writing `files` (Debian 12's default RFC 3339
 * file format and the traditional RFC 3164 one), then runs `commands` and waits.
 */
async function syslogNamespace (dir: string, files: { rfc3339: string, rfc3164: string }, commands: string[]): Promise<string> {
  const rsyslogConf = join(dir, 'rsyslog.conf')
  await mkdir(join(dir, 'rsyslog'), { recursive: true })
  await writeFile(rsyslogConf, [
    `global(workDirectory="${join(dir, 'rsyslog')}")`,
    'module(load="imuxsock" SysSock.Name="/dev/log")',
    `*.* action(type="omfile" file="${files.rfc3339}" template="RSYSLOG_FileFormat")`,
    `*.* action(type="omfile" file="${files.rfc3164}" template="RSYSLOG_TraditionalFileFormat")`
  ].join('\n') + '\n')
  const realDev = join(dir, 'realdev')
  await mkdir(realDev, { recursive: true })
  const script = join(dir, 'syslog-ns.sh')
  await writeFile(script, `#!/bin/sh
# Runs inside "unshare --mount": the host's /dev and /dev/log are never touched.
set -e
# On SIGTERM (sent to the whole process group) reap the children before exiting, so none is orphaned.
trap 'wait; exit 0' TERM INT
mount --make-rprivate /
mount --bind /dev '${realDev}'
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero random urandom tty; do touch /dev/$n; mount --bind '${realDev}'/$n /dev/$n; done
rsyslogd -n -f '${rsyslogConf}' -i '${join(dir, 'rsyslogd.pid')}' &
i=0; while [ ! -S /dev/log ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
${commands.join('\n')}
wait
`)
  await chmod(script, 0o755)
  return script
}

/**
 * proftpd 1.3.8 from Debian (unpacked): one daemon on 127.0.0.1 and ::1 with TransferLog (xferlog),
 * ExtendedLog in the auditline LogFormat, and SyslogLevel info — its session messages go to SystemLog
 * (a file), or with `via: 'syslog'` to syslog (rsyslogd in a private mount namespace). It runs as a
 * daemon because with --nodaemon proftpd writes everything to stderr instead of its SystemLog.
 */
export async function startProftpd (dir: string, via: 'systemlog' | 'syslog' = 'systemlog'): Promise<RunningFtp> {
  const { root, env } = await unpack('proftpd')
  const logs: Record<string, string> = { xferlog: join(dir, 'proftpd-xferlog'), extended: join(dir, 'proftpd-extended.log') }
  if (via === 'systemlog') logs.systemlog = join(dir, 'proftpd-system.log')
  else Object.assign(logs, { syslog: join(dir, 'proftpd-syslog.log'), syslog3164: join(dir, 'proftpd-syslog-3164.log') })
  const port = await freePort()
  const conf = join(dir, 'proftpd.conf')
  const pidFile = join(dir, 'proftpd.pid')
  await writeFile(conf, [
    `ModulePath ${join(root, 'usr', 'lib', 'proftpd')}`,
    'ServerName "auditline test"',
    'ServerType standalone',
    'DefaultServer on',
    'UseIPv6 on',
    'DefaultAddress 127.0.0.1 ::1',
    `Port ${port}`,
    'User nobody',
    'Group nogroup',
    `PidFile ${pidFile}`,
    `ScoreboardFile ${join(dir, 'proftpd.scoreboard')}`,
    'WtmpLog off',
    'UseReverseDNS off',
    // The Debian package's PAM service file is not installed with an unpacked .deb: use /etc/shadow.
    'AuthOrder mod_auth_unix.c',
    'AuthPAM off',
    'RequireValidShell off',
    'Umask 022',
    'MaxInstances 20',
    // "Login successful", "FTP session opened/closed" are logged at info only.
    'SyslogLevel info',
    ...(via === 'systemlog' ? [`SystemLog ${logs.systemlog as string}`] : ['SyslogFacility daemon']),
    `TransferLog ${logs.xferlog as string}`,
    PROFTPD_LOGFORMAT,
    `ExtendedLog ${logs.extended as string} ALL auditline`,
    '<Directory />',
    '  AllowOverwrite on',
    '</Directory>'
  ].join('\n') + '\n')
  const bin = join(root, 'usr', 'sbin', 'proftpd')
  if (via === 'systemlog') return await startAll('proftpd', [{ cmd: bin, args: ['--config', conf], env, pidFile }], port, port, logs)
  const script = await syslogNamespace(dir, { rfc3339: logs.syslog as string, rfc3164: logs.syslog3164 as string }, [`'${bin}' --config '${conf}'`])
  return await startAll('proftpd', [{ cmd: 'unshare', args: ['--mount', '--propagation', 'private', script], env, pidFile }], port, port, logs)
}

/**
 * pure-ftpd 1.0.50 from Debian (unpacked): two instances (one per loopback address) with the `-O stats:`
 * transfer log and `-d -d` (commands and replies) `-1` (pid) syslog lines, which rsyslogd receives in a
 * private mount namespace.
 */
export async function startPureFtpd (dir: string): Promise<RunningFtp> {
  const { root, env } = await unpack('pure-ftpd')
  const logs = { stats: join(dir, 'pure-ftpd-stats.log'), syslog: join(dir, 'pure-ftpd-syslog.log'), syslog3164: join(dir, 'pure-ftpd-syslog-3164.log') }
  const v4 = await freePort()
  const v6 = await freePort()
  const bin = join(root, 'usr', 'sbin', 'pure-ftpd')
  const flags = ['-l', 'unix', '-E', '-H', '-1', '-d', '-d', '-O', `stats:${logs.stats}`].join(' ')
  const script = await syslogNamespace(dir, { rfc3339: logs.syslog, rfc3164: logs.syslog3164 }, [
    `'${bin}' -S 127.0.0.1,${v4} ${flags} &`,
    `'${bin}' -S ::1,${v6} ${flags} &`
  ])
  return await startAll('pure-ftpd', [{ cmd: 'unshare', args: ['--mount', '--propagation', 'private', script], env }], v4, v6, logs)
}
