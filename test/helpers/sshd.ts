/**
 * A real OpenSSH server (Debian's openssh-server) for the tests, with a real rsyslogd behind its syslog.
 *
 * Two sshd instances on free loopback ports (127.0.0.1 and ::1 each), own `sshd_config`, own ED25519 host key:
 *   - `syslog`: logs through syslog(3) to /dev/log → rsyslogd writes auth.log three ways: Debian 12's default
 *     (RFC 3339, `RSYSLOG_FileFormat`), traditional RFC 3164 and RFC 5424 (`RSYSLOG_SyslogProtocol23Format`).
 *   - `sshd-e`: `-E FILE` (message only: no time, host or pid).
 * Both use `LogLevel VERBOSE` (failed key attempts are logged only at VERBOSE; the accepted key's fingerprint
 * already at INFO in OpenSSH 9.2) and `UsePAM yes` with Debian's stock /etc/pam.d/sshd, so pam_unix session
 * lines occur where they do on a real host — always through syslog, even for the `-E` instance.
 *
 * /dev/log: this machine runs no syslog daemon and the host's /dev must not be touched (other tests and
 * programs share it). sshd, and the sudo it runs, live in a private mount namespace (`unshare -m`) whose /dev
 * is a tmpfs with the real device nodes bound in and `log` a symlink to the socket our rsyslogd listens on
 * (glibc's syslog(3) connects to the fixed path /dev/log and follows the symlink).
 *
 * A throwaway local user (SSH_USER, with a random password and an authorized ED25519 key) is created on start
 * and removed by stop(). Requires root, `unshare`, openssh-server, openssh-client, sshpass, rsyslog, sudo.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, canConnect } from './net.ts'

export const SSH_USER = 'auditline-ssh'
export const INVALID_USER = 'intruder-x'

export type LoopbackHost = '127.0.0.1' | '::1'

export interface SshLogs {
  /** rsyslog, Debian 12 default file format (RFC 3339 timestamps). */
  rfc3339: string
  /** rsyslog, RSYSLOG_TraditionalFileFormat (RFC 3164). */
  rfc3164: string
  /** rsyslog, RSYSLOG_SyslogProtocol23Format (RFC 5424). */
  rfc5424: string
  /** `sshd -E` of the second instance. */
  sshdE: string
}

export interface SshResult { code: number, stdout: string, stderr: string }

export interface SshLogin {
  host: LoopbackHost
  /** Which instance: the one logging to syslog or the `-E` one. */
  instance: 'syslog' | 'sshd-e'
  auth: 'password' | 'publickey' | 'keyboard-interactive'
  user?: string
  /** Password to offer (the user's real one by default). */
  password?: string
  /** Extra (unauthorized) private keys offered before the real one, to provoke failed publickey attempts. */
  keys?: readonly string[]
  /** Leave out the authorized key (publickey logins that must fail). */
  withoutAuthorizedKey?: boolean
  /** Force a pty (`ssh -tt`), as an interactive login has. */
  tty?: boolean
  command?: string
}

export interface SshLab {
  readonly dir: string
  readonly user: string
  readonly password: string
  readonly ports: { readonly syslog: number, readonly sshdE: number }
  readonly logs: SshLogs
  /** Unauthorized ED25519 keys (for failed publickey attempts). */
  readonly strayKeys: readonly string[]
  /** Debian package versions of openssh-server, rsyslog and sudo. */
  readonly version: string
  ssh (login: SshLogin): Promise<SshResult>
  /** `ssh-keyscan`: connects, reads the host key and hangs up before authenticating. */
  keyscan (host: LoopbackHost, instance: 'syslog' | 'sshd-e'): Promise<void>
  /** Runs `sudo -u SSH_USER /usr/bin/true` as root inside the namespace (sudo lines that succeed), once without and once with a terminal. */
  sudoAsRoot (): Promise<void>
  /** Waits until `file` has a line matching `re` (rsyslog and sshd write asynchronously). */
  waitForLine (file: string, re: RegExp, timeoutMs?: number): Promise<void>
  output (): string
  stop (): Promise<void>
}

function exec (cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv, input?: string, timeoutMs?: number } = {}): Promise<SshResult> {
  return new Promise(resolve => {
    const child = execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

async function must (cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv, input?: string } = {}): Promise<string> {
  const r = await exec(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r.stdout
}

/**
 * Runs inside `unshare -m`: replaces /dev with a tmpfs holding the real device nodes and a /dev/log
 * symlink to our rsyslogd's socket, then execs the command (so the spawned pid is the command's).
 */
const PRIVATE_DEV_SCRIPT = `#!/bin/sh
set -e
D=$1; SOCK=$2; shift 2
mount --make-rprivate /
mkdir -p "$D"
mount -t tmpfs -o mode=755 tmpfs "$D"
for n in null zero full random urandom tty; do touch "$D/$n"; mount --bind "/dev/$n" "$D/$n"; done
mkdir "$D/pts" "$D/shm"
mount --bind /dev/pts "$D/pts"
mount --bind /dev/shm "$D/shm"
# ptys come from the devpts instance itself (a bound /dev/ptmx node would not find it under the new /dev).
ln -s pts/ptmx "$D/ptmx"
ln -s /proc/self/fd "$D/fd"; ln -s /proc/self/fd/0 "$D/stdin"; ln -s /proc/self/fd/1 "$D/stdout"; ln -s /proc/self/fd/2 "$D/stderr"
ln -s "$SOCK" "$D/log"
mount --rbind "$D" /dev
exec "$@"
`

/** Version of an installed Debian package. */
export async function debVersion (pkg: string): Promise<string> {
  // dpkg-query's own format syntax, not a template string.
  return (await must('dpkg-query', ['-W', '-f=${Version}', pkg])).trim() // eslint-disable-line no-template-curly-in-string
}

async function userExists (name: string): Promise<boolean> {
  return (await exec('id', ['-u', name])).code === 0
}

export async function startSshLab (dir: string): Promise<SshLab> {
  const children: Array<{ name: string, child: ChildProcess, out: string[] }> = []
  const logs: SshLogs = { rfc3339: join(dir, 'auth-rfc3339.log'), rfc3164: join(dir, 'auth-rfc3164.log'), rfc5424: join(dir, 'auth-rfc5424.log'), sshdE: join(dir, 'sshd-e.log') }
  const sock = join(dir, 'log.sock')
  const nsScript = join(dir, 'private-dev.sh')
  const password = `Pw-${randomBytes(9).toString('base64url')}`
  let createdUser = false

  const spawnTracked = (name: string, cmd: string, args: string[]): ChildProcess => {
    // detached: own process group, so stop() can signal sshd's forked children too.
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: string[] = []
    child.stdout?.on('data', (b: Buffer) => out.push(b.toString()))
    child.stderr?.on('data', (b: Buffer) => out.push(b.toString()))
    children.push({ name, child, out })
    return child
  }

  const lab: SshLab = {
    dir,
    user: SSH_USER,
    password,
    ports: { syslog: 0, sshdE: 0 },
    logs,
    strayKeys: [join(dir, 'stray1_ed25519'), join(dir, 'stray2_ed25519'), join(dir, 'stray3_ed25519')],
    version: '',
    async ssh (l) {
      const port = l.instance === 'syslog' ? lab.ports.syslog : lab.ports.sshdE
      const base = ['-F', '/dev/null', '-p', String(port), '-o', 'UserKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=no',
        '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=5', '-o', 'IdentitiesOnly=yes', '-o', `PreferredAuthentications=${l.auth}`, ...(l.tty === true ? ['-tt'] : [])]
      const target = `${l.user ?? SSH_USER}@${l.host}`
      const cmd = l.command ?? 'true'
      if (l.auth === 'publickey') {
        const keys = [...(l.keys ?? []), ...(l.withoutAuthorizedKey === true ? [] : [join(dir, 'client_ed25519')])]
        return await exec('ssh', [...base, '-o', 'BatchMode=yes', ...keys.flatMap(k => ['-i', k]), target, cmd])
      }
      // sshpass -e reads the password from SSHPASS, so it never shows in a process listing.
      return await exec('sshpass', ['-e', 'ssh', ...base, '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1', target, cmd],
        { env: { ...process.env, SSHPASS: l.password ?? password } })
    },
    async keyscan (host, instance) {
      await exec('ssh-keyscan', ['-p', String(instance === 'syslog' ? lab.ports.syslog : lab.ports.sshdE), '-t', 'ed25519', host])
    },
    async sudoAsRoot () {
      await must('unshare', ['--mount', nsScript, join(dir, 'dev-sudo'), sock, 'sudo', '-u', SSH_USER, '/usr/bin/true'])
      // script(1) gives sudo a pty, so its line carries TTY=pts/N like an interactive one.
      await must('unshare', ['--mount', nsScript, join(dir, 'dev-sudo-tty'), sock, 'script', '-qec', `sudo -u ${SSH_USER} /usr/bin/id -u`, '/dev/null'])
    },
    async waitForLine (file, re, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      while (Date.now() < until) {
        const text = await readFile(file, 'utf8').catch(() => '')
        if (text.split('\n').some(l => re.test(l))) return
        await sleep(50)
      }
      throw new Error(`no line matching ${String(re)} in ${file} after ${timeoutMs} ms:\n${(await readFile(file, 'utf8').catch(() => '(missing)')).split('\n').slice(-20).join('\n')}\n${lab.output()}`)
    },
    output () {
      return children.map(c => `--- ${c.name} (pid ${String(c.child.pid)}, exit ${String(c.child.exitCode)})\n${c.out.join('').slice(-4000)}`).join('\n')
    },
    async stop () {
      for (const c of [...children].reverse()) {
        if (c.child.pid === undefined || c.child.exitCode !== null) continue
        const gone = new Promise<void>(resolve => { c.child.once('exit', () => { resolve() }) })
        try { process.kill(-c.child.pid, 'SIGTERM') } catch { /* already gone */ }
        const killed = await Promise.race([gone.then(() => true), sleep(5000).then(() => false)])
        if (!killed) { try { process.kill(-c.child.pid, 'SIGKILL') } catch { /* already gone */ } }
      }
      if (createdUser || await userExists(SSH_USER)) {
        // -f: a session process that is still exiting must not keep the account alive.
        await exec('userdel', ['--force', '--remove', SSH_USER])
      }
    }
  }

  try {
    await mkdir(dir, { recursive: true })
    await chmod(dir, 0o755)
    // sshd's per-session child runs as the user and logs through the socket in `dir`: every directory on the
    // way must be searchable by others, or the session's lines ("Disconnected from user …") are silently lost.
    for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
      if (((await stat(d)).mode & 0o001) === 0) throw new Error(`startSshLab: ${d} is not searchable by other users (mode o+x needed); use a directory like mkdtemp(tmpdir()) itself`)
    }
    await writeFile(nsScript, PRIVATE_DEV_SCRIPT, { mode: 0o755 })
    // sshd's privilege separation directory (compiled-in path; Debian's init script creates it at boot).
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
    for (const k of ['host_ed25519', 'client_ed25519', 'stray1_ed25519', 'stray2_ed25519', 'stray3_ed25519']) {
      await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(dir, k)])
    }
    Object.assign(lab, { version: (await Promise.all(['openssh-server', 'rsyslog', 'sudo'].map(async p => `${p} ${await debVersion(p)}`))).join(', ') })

    // The throwaway user: created here (or reused after a crashed run), removed by stop().
    if (!await userExists(SSH_USER)) {
      await must('useradd', ['--create-home', '--shell', '/bin/sh', '--comment', 'auditline sshd test user', SSH_USER])
      createdUser = true
    }
    await must('chpasswd', [], { input: `${SSH_USER}:${password}\n` })
    const home = (await must('getent', ['passwd', SSH_USER])).split(':')[5] as string
    const uid = Number((await must('id', ['-u', SSH_USER])).trim())
    const gid = Number((await must('id', ['-g', SSH_USER])).trim())
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 })
    await writeFile(join(home, '.ssh', 'authorized_keys'), await readFile(join(dir, 'client_ed25519.pub')), { mode: 0o600 })
    await chown(join(home, '.ssh'), uid, gid)
    await chown(join(home, '.ssh', 'authorized_keys'), uid, gid)

    // rsyslogd on a socket of its own (not /dev/log: SysSock.Use="off"), writing the three file formats.
    await mkdir(join(dir, 'rsyslog'), { recursive: true })
    const rsyslogConf = join(dir, 'rsyslog.conf')
    await writeFile(rsyslogConf, [
      `global(workDirectory="${join(dir, 'rsyslog')}")`,
      'module(load="imuxsock" SysSock.Use="off")',
      `input(type="imuxsock" Socket="${sock}")`,
      `auth,authpriv.* action(type="omfile" file="${logs.rfc3339}" template="RSYSLOG_FileFormat")`,
      `auth,authpriv.* action(type="omfile" file="${logs.rfc3164}" template="RSYSLOG_TraditionalFileFormat")`,
      `auth,authpriv.* action(type="omfile" file="${logs.rfc5424}" template="RSYSLOG_SyslogProtocol23Format")`
    ].join('\n') + '\n')
    spawnTracked('rsyslogd', 'rsyslogd', ['-n', '-f', rsyslogConf, '-i', join(dir, 'rsyslogd.pid')])
    const sockUntil = Date.now() + 10_000
    while ((await exec('test', ['-S', sock])).code !== 0) {
      if (Date.now() > sockUntil) throw new Error(`rsyslogd did not create ${sock}`)
      await sleep(50)
    }

    const ports = { syslog: await freePort(), sshdE: await freePort() }
    Object.assign(lab, { ports })
    for (const [name, port] of [['syslog', ports.syslog], ['sshd-e', ports.sshdE]] as const) {
      const conf = join(dir, `sshd_config.${name}`)
      await writeFile(conf, [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        'ListenAddress ::1',
        `HostKey ${join(dir, 'host_ed25519')}`,
        `PidFile ${join(dir, `sshd.${name}.pid`)}`,
        'SyslogFacility AUTH',
        'LogLevel VERBOSE',
        'UsePAM yes',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication yes',
        'PubkeyAuthentication yes',
        'AuthorizedKeysFile .ssh/authorized_keys',
        // Three failed attempts end a connection with "maximum authentication attempts exceeded".
        'MaxAuthTries 3',
        'PermitRootLogin no',
        'PrintMotd no',
        'UseDNS no'
      ].join('\n') + '\n')
      await must('/usr/sbin/sshd', ['-t', '-f', conf])
      const args = ['--mount', nsScript, join(dir, `dev-${name}`), sock, '/usr/sbin/sshd', '-D', '-f', conf, ...(name === 'sshd-e' ? ['-E', logs.sshdE] : [])]
      spawnTracked(`sshd (${name})`, 'unshare', args)
    }
    const until = Date.now() + 15_000
    for (const port of [ports.syslog, ports.sshdE]) {
      for (const host of ['127.0.0.1', '::1']) {
        while (!await canConnect(host, port)) {
          if (Date.now() > until) throw new Error(`sshd did not listen on [${host}]:${port}\n${lab.output()}`)
          await sleep(50)
        }
      }
    }
    return lab
  } catch (err) {
    await lab.stop()
    throw err
  }
}

/**
 * The logins the fixtures and the integration test are made of, on both instances and both address
 * families. Failed passwords cost ~2 s each (PAM's fail delay), so independent logins run in parallel.
 */
export async function runSshScenario (lab: SshLab): Promise<void> {
  const expectOk = async (what: string, l: SshLogin): Promise<void> => {
    const r = await lab.ssh(l)
    if (r.code !== 0) throw new Error(`${what}: ssh exited ${r.code}: ${r.stderr.trim()}\n${lab.output()}`)
  }
  const expectFail = async (what: string, l: SshLogin): Promise<void> => {
    const r = await lab.ssh(l)
    if (r.code === 0) throw new Error(`${what}: login succeeded, expected a failure`)
  }
  await Promise.all(['syslog', 'sshd-e'].flatMap(instance => (['127.0.0.1', '::1'] as const).map(async host => {
    const i = instance as SshLogin['instance']
    await expectOk(`password ${host} ${i}`, { host, instance: i, auth: 'password' })
    await expectOk(`publickey ${host} ${i}`, { host, instance: i, auth: 'publickey' })
    await expectOk(`keyboard-interactive ${host} ${i}`, { host, instance: i, auth: 'keyboard-interactive' })
  })))
  await Promise.all([
    expectFail('wrong password, IPv4', { host: '127.0.0.1', instance: 'syslog', auth: 'password', password: 'wrong-password' }),
    expectFail('wrong password, IPv6', { host: '::1', instance: 'sshd-e', auth: 'password', password: 'wrong-password' }),
    expectFail('invalid user, IPv6', { host: '::1', instance: 'syslog', auth: 'password', user: INVALID_USER, password: 'guess' }),
    expectFail('invalid user, IPv4', { host: '127.0.0.1', instance: 'sshd-e', auth: 'password', user: INVALID_USER, password: 'guess' }),
    // Three unauthorized keys: MaxAuthTries 3 → "maximum authentication attempts exceeded".
    expectFail('too many keys, IPv4', { host: '127.0.0.1', instance: 'syslog', auth: 'publickey', keys: lab.strayKeys, withoutAuthorizedKey: true }),
    expectFail('too many keys, IPv6', { host: '::1', instance: 'sshd-e', auth: 'publickey', keys: lab.strayKeys, withoutAuthorizedKey: true }),
    lab.keyscan('::1', 'syslog'),
    lab.keyscan('127.0.0.1', 'sshd-e'),
    // sudo refused (not in sudoers) inside an SSH session, and one sudo run by root that succeeds.
    lab.ssh({ host: '127.0.0.1', instance: 'syslog', auth: 'publickey', command: `echo '${lab.password}' | sudo -S -p '' /usr/bin/id` }),
    lab.ssh({ host: '::1', instance: 'syslog', auth: 'publickey', tty: true, command: `echo '${lab.password}' | sudo -S -p '' /usr/bin/whoami` }),
    lab.sudoAsRoot()
  ])
}
