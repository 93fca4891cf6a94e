// Process, port and file helpers for the local stack. Linux-only where it reads /proc
// (the stack targets the Debian CI machines; on other systems the /proc checks are skipped).
import { execFile, spawn } from 'node:child_process'
import { open, readFile, readdir, stat, writeFile, unlink } from 'node:fs/promises'
import { connect, createServer, type Server } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

/** Reserves `count` distinct free TCP ports on 127.0.0.1. All listeners stay open until every port is read, so the
 * ports differ from each other; another program may still grab one before the service binds it (small, accepted race). */
export async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    const ports: number[] = []
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('Could not read the port of a probe listener.')
      ports.push(address.port)
    }
    return ports
  } finally {
    await Promise.all(servers.map(async (s) => await new Promise<void>((resolve) => s.close(() => resolve()))))
  }
}

/** Resolves true if a TCP connection to host:port succeeds within `timeoutMs`. */
export async function canConnect (host: string, port: number, timeoutMs = 2_000): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

interface ProcStat { pid: number, state: string, pgrp: number }

/** Parses /proc/<pid>/stat. The command name (field 2) may contain spaces and parentheses, so split after the last ')'. */
async function readStat (pid: number): Promise<ProcStat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8')
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { pid, state: rest[0] ?? '?', pgrp: Number(rest[2]) }
  } catch {
    return undefined
  }
}

/** True if `pid` runs and is not a zombie (a zombie still answers kill(pid, 0) but does nothing). */
export async function isAlive (pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone we may not signal; count it as alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const st = await readStat(pid)
  return st === undefined ? true : st.state !== 'Z'
}

/** The command line of `pid`, arguments joined by spaces, or undefined if unreadable. */
export async function readCmdline (pid: number): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim()
  } catch {
    return undefined
  }
}

async function listPids (): Promise<number[]> {
  try {
    return (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)
  } catch {
    return []
  }
}

/** Live (non-zombie) members of process group `pgid`. */
export async function groupMembers (pgid: number): Promise<number[]> {
  const stats = await Promise.all((await listPids()).map(readStat))
  return stats.filter((s): s is ProcStat => s !== undefined && s.pgrp === pgid && s.state !== 'Z').map((s) => s.pid)
}

/** Java processes whose command line mentions `needle` (a path under the stack's cache). Restricted to java so that
 * a `tail -f .cache/stack/logs/…` in another terminal is never mistaken for part of the stack. */
export async function findJavaProcesses (needle: string): Promise<number[]> {
  const found: number[] = []
  for (const pid of await listPids()) {
    if (pid === process.pid) continue
    const cmd = await readCmdline(pid)
    if (cmd === undefined || !cmd.includes(needle)) continue
    const argv0 = cmd.split(' ')[0] ?? ''
    if (argv0 === 'java' || argv0.endsWith('/java')) found.push(pid)
  }
  return found
}

function signal (pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // Already gone (ESRCH) or not a group: nothing to do.
  }
}

async function anyAlive (pids: number[], pgid: number): Promise<boolean> {
  if ((await groupMembers(pgid)).length > 0) return true
  for (const pid of pids) if (await isAlive(pid)) return true
  return false
}

/**
 * Stops a detached service: SIGTERM to its whole process group (Elasticsearch's launcher JVM spawns the server JVM
 * as a child in the same group, and both must die), then SIGKILL after `graceMs`. Resolves once nothing is left.
 */
export async function stopGroup (leader: number, opts: { graceMs?: number, extra?: number[] } = {}): Promise<void> {
  const graceMs = opts.graceMs ?? 15_000
  const pids = [leader, ...(opts.extra ?? [])]
  const send = (sig: NodeJS.Signals): void => {
    signal(-leader, sig)
    for (const pid of pids) signal(pid, sig)
  }
  send('SIGTERM')
  const termDeadline = Date.now() + graceMs
  while (Date.now() < termDeadline) {
    if (!await anyAlive(pids, leader)) return
    await sleep(200)
  }
  send('SIGKILL')
  const killDeadline = Date.now() + 5_000
  while (Date.now() < killDeadline) {
    if (!await anyAlive(pids, leader)) return
    await sleep(100)
  }
  throw new Error(`Process group ${leader} survived SIGKILL; remaining: ${(await groupMembers(leader)).join(', ')}.`)
}

export interface SpawnDetachedOptions {
  cwd: string
  env: NodeJS.ProcessEnv
  /** stdout and stderr are appended here, so output survives this Node process. */
  logFile: string
  uid?: number
  gid?: number
}

/** Starts `command` in its own session/process group, detached from this Node process, and returns its pid. */
export async function spawnDetached (command: string, args: string[], opts: SpawnDetachedOptions): Promise<number> {
  const out = await open(opts.logFile, 'a')
  try {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      // detached => setsid(): the child leads a new process group, which `stopGroup` signals as a whole.
      detached: true,
      stdio: ['ignore', out.fd, out.fd],
      ...(opts.uid === undefined ? {} : { uid: opts.uid }),
      ...(opts.gid === undefined ? {} : { gid: opts.gid })
    })
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (err) => reject(new Error(`Could not start ${command}: ${err.message}`, { cause: err })))
    })
    child.unref()
    if (child.pid === undefined) throw new Error(`Could not start ${command}: no pid.`)
    return child.pid
  } finally {
    // The child holds its own copy of the descriptor.
    await out.close()
  }
}

export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  uid?: number
  gid?: number
}

/** Runs a command to completion; on failure the error message carries its output. */
export async function run (command: string, args: string[], opts: RunOptions = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 600_000,
      maxBuffer: 16 * 1024 * 1024,
      ...(opts.uid === undefined ? {} : { uid: opts.uid }),
      ...(opts.gid === undefined ? {} : { gid: opts.gid })
    }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout)
        return
      }
      const output = `${stdout}${stderr}`.trim().split('\n').slice(-40).join('\n')
      reject(new Error(`Command failed: ${command} ${args.join(' ')}\n${output}`, { cause: err }))
    })
  })
}

export async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** The last `lines` lines of a text file (read whole: these logs are small), or a note if it is missing. */
export async function tail (file: string, lines = 40): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trimEnd()
    return text === '' ? '(empty)' : text.split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log file)'
  }
}

async function isOlderThan (path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms
  } catch {
    return true
  }
}

/**
 * Runs `fn` while holding an exclusive lock file, so that concurrent `up`/`down` calls (parallel test workers,
 * two terminals) do not start two stacks. A lock left by a dead process is taken over.
 */
export async function withLock<T> (lockFile: string, fn: () => Promise<T>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await writeFile(lockFile, String(process.pid), { flag: 'wx' })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const content = (await readFile(lockFile, 'utf8').catch(() => '')).trim()
      const holder = Number(content)
      // An empty lock is one being written right now (create and write are two steps): wait, unless it is old.
      const stale = content === '' ? await isOlderThan(lockFile, 10_000) : !await isAlive(holder)
      if (stale) {
        await unlink(lockFile).catch(() => undefined)
        continue
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${lockFile} (held by pid ${holder}).`)
      await sleep(500)
    }
  }
  try {
    return await fn()
  } finally {
    await unlink(lockFile).catch(() => undefined)
  }
}
