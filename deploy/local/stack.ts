// The project's local Kafka + Elasticsearch stack: real servers fetched from Maven Central, started detached on
// loopback, recorded in <root>/.cache/stack/state.json so that later `up`, `status` and `down` calls (from the CLI or
// from the integration tests' hooks) find them again. See README.md next to this file.
import { chmod, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureElasticsearchHome, ensureKafkaLibs, kafkaVersionOf } from './artifacts.ts'
import { checkElasticsearch, elasticsearchLogFiles, ensureRunAs, prepareElasticsearch, startElasticsearch } from './elasticsearch.ts'
import { checkKafka, kafkaLogFiles, prepareKafka, startKafka, type Health } from './kafka.ts'
import { exists, findJavaProcesses, freePorts, isAlive, readCmdline, sleep, stopGroup, tail, withLock } from './proc.ts'

export interface StackInfo {
  kafka: { brokers: string[], version: string, pid: number }
  elasticsearch: { url: string, version: string, pid: number }
  stateDir: string
}

export interface StackStatus {
  kafka: { healthy: boolean, detail: string, version?: string, brokers?: string[] }
  elasticsearch: { healthy: boolean, detail: string, version?: string, url?: string }
}

export interface UpOptions {
  /** Repository root; the cache lives in <root>/.cache. Defaults to this repository. */
  root?: string
  /** Progress messages (downloads, starts, waits). Silent by default. */
  log?: (msg: string) => void
  /** A Java 17+ home for both JVMs. Defaults to Debian's Java 17, then the `java` on PATH. */
  javaHome?: string
}

const DEFAULT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const KAFKA_START_TIMEOUT_MS = 90_000
// Elasticsearch needs 20–60 s on two cores; leave room for a busy CI machine.
const ELASTICSEARCH_START_TIMEOUT_MS = 150_000
const STATE_VERSION = 1
/** How long `up` waits for a running but unresponsive stack before replacing it. */
const REUSE_PATIENCE_MS = 90_000

interface State {
  stateVersion: number
  startedAt: string
  kafka: { pid: number, port: number, controllerPort: number, version: string }
  elasticsearch: { pid: number, httpPort: number, transportPort: number, version: string }
}

interface Paths {
  cacheDir: string
  stateDir: string
  stateFile: string
  lockFile: string
  logsDir: string
  prevLogsDir: string
  kafkaDir: string
  elasticsearchDir: string
}

async function pathsFor (root: string | undefined): Promise<Paths> {
  // realpath: the state directory is matched against process command lines, which carry resolved paths.
  const base = await realpath(root ?? DEFAULT_ROOT)
  const cacheDir = join(base, '.cache')
  const stateDir = join(cacheDir, 'stack')
  return {
    cacheDir,
    stateDir,
    stateFile: join(stateDir, 'state.json'),
    lockFile: join(stateDir, 'stack.lock'),
    logsDir: join(stateDir, 'logs'),
    prevLogsDir: join(stateDir, 'logs.prev'),
    kafkaDir: join(stateDir, 'kafka'),
    elasticsearchDir: join(stateDir, 'elasticsearch')
  }
}

const brokersOf = (s: State): string[] => [`127.0.0.1:${s.kafka.port}`]
const urlOf = (s: State): string => `http://127.0.0.1:${s.elasticsearch.httpPort}`

function infoOf (s: State, p: Paths): StackInfo {
  return {
    kafka: { brokers: brokersOf(s), version: s.kafka.version, pid: s.kafka.pid },
    elasticsearch: { url: urlOf(s), version: s.elasticsearch.version, pid: s.elasticsearch.pid },
    stateDir: p.stateDir
  }
}

async function readState (p: Paths): Promise<State | undefined> {
  let text: string
  try {
    text = await readFile(p.stateFile, 'utf8')
  } catch {
    return undefined
  }
  try {
    const parsed = JSON.parse(text) as State // written only by writeState below; the version field guards old formats
    return parsed.stateVersion === STATE_VERSION ? parsed : undefined
  } catch {
    return undefined
  }
}

async function writeState (p: Paths, s: State): Promise<void> {
  // Write-then-rename so that a concurrent `status` never reads half a file.
  const tmp = `${p.stateFile}.tmp`
  await writeFile(tmp, JSON.stringify(s, null, 2) + '\n')
  await rename(tmp, p.stateFile)
}

/** True if `pid` is alive and its command line mentions our cache, i.e. the pid has not been reused by another
 * program since state.json was written. */
async function isOurs (pid: number, p: Paths): Promise<boolean> {
  if (!await isAlive(pid)) return false
  const cmd = await readCmdline(pid)
  return cmd === undefined || cmd.includes(p.cacheDir)
}

/** Stops everything the stack may have left running: the recorded process groups, then any other java process
 * started from our cache (e.g. after a crashed `up` that never wrote its state). Removes state.json. */
async function stopAll (p: Paths, s: State | undefined): Promise<void> {
  const leaders = s === undefined ? [] : [s.kafka.pid, s.elasticsearch.pid]
  await Promise.all(leaders.map(async (pid) => {
    if (await isOurs(pid, p)) await stopGroup(pid)
  }))
  const strays = await findJavaProcesses(p.cacheDir)
  await Promise.all(strays.map(async (pid) => await stopGroup(pid)))
  const left = await findJavaProcesses(p.cacheDir)
  if (left.length > 0) throw new Error(`Processes of the local stack are still running after stop: ${left.join(', ')}.`)
  await rm(p.stateFile, { force: true })
}

async function findJavaHome (preferred: string | undefined): Promise<string> {
  const candidates = [preferred, '/usr/lib/jvm/java-17-openjdk-amd64']
  for (const dir of (process.env.PATH ?? '').split(':')) {
    // A `java` on PATH is usually a symlink chain ending in <home>/bin/java.
    if (dir !== '' && await exists(join(dir, 'java'))) candidates.push(dirname(dirname(await realpath(join(dir, 'java')))))
  }
  for (const home of candidates) {
    if (home !== undefined && await exists(join(home, 'bin', 'java'))) return home
  }
  throw new Error('No Java found for the local stack: install openjdk-17-jre-headless or pass javaHome.')
}

/** Keeps the previous run's logs (logs.prev/) for inspection and starts with empty logs and fresh data. */
async function resetRunDirs (p: Paths): Promise<void> {
  await rm(p.prevLogsDir, { recursive: true, force: true })
  if (await exists(p.logsDir)) await rename(p.logsDir, p.prevLogsDir)
  await mkdir(p.logsDir, { recursive: true })
  await rm(p.kafkaDir, { recursive: true, force: true })
  await rm(p.elasticsearchDir, { recursive: true, force: true })
  await mkdir(p.kafkaDir, { recursive: true })
  await mkdir(p.elasticsearchDir, { recursive: true })
}

async function startupError (what: string, reason: string, logs: string[]): Promise<Error> {
  const parts = [`${what} did not start: ${reason}`]
  for (const file of logs) parts.push(`--- last lines of ${file} ---\n${await tail(file, 40)}`)
  return new Error(parts.join('\n'))
}

/** Polls `check` until healthy; fails early if the process exits, and on timeout. */
async function waitHealthy<T extends Health> (what: string, pid: number, check: () => Promise<T>, timeoutMs: number,
  logs: string[], signal: AbortSignal): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error(`${what}: startup abandoned.`)
    if (!await isAlive(pid)) throw await startupError(what, `process ${pid} exited during startup`, logs)
    last = await check()
    if (last.healthy) return last
    await sleep(1_000)
  }
  throw await startupError(what, `not healthy after ${timeoutMs / 1000} s (${last?.detail ?? 'never checked'})`, logs)
}

/**
 * Starts Kafka and Elasticsearch, or returns the running ones (reused=true) if state.json points at a healthy stack.
 * A stale or half-dead stack is stopped and replaced. Data directories are fresh on every start.
 */
export async function up (opts: UpOptions = {}): Promise<StackInfo & { reused: boolean }> {
  const log = opts.log ?? (() => undefined)
  const p = await pathsFor(opts.root)
  await mkdir(p.stateDir, { recursive: true })
  return await withLock(p.lockFile, async () => {
    const previous = await readState(p)
    if (previous !== undefined) {
      let st = await statusOf(previous)
      // Both processes alive but not answering: busy (another run's load, a GC pause) or paused by a test
      // (SIGSTOP). Replacing them would pull the stack away from whoever uses it: give them time first.
      const until = Date.now() + REUSE_PATIENCE_MS
      while (!(st.kafka.healthy && st.elasticsearch.healthy) && Date.now() < until &&
        await isAlive(previous.kafka.pid) && await isAlive(previous.elasticsearch.pid)) {
        await sleep(2000)
        st = await statusOf(previous)
      }
      if (st.kafka.healthy && st.elasticsearch.healthy) return { ...infoOf(previous, p), reused: true }
      log(`Replacing a stale stack (Kafka: ${st.kafka.detail}; Elasticsearch: ${st.elasticsearch.detail}).`)
    }
    await stopAll(p, previous)
    return { ...await startFresh(p, opts, log), reused: false }
  })
}

async function startFresh (p: Paths, opts: UpOptions, log: (msg: string) => void): Promise<StackInfo> {
  const javaHome = await findJavaHome(opts.javaHome)
  // One after the other: two Maven processes writing the same ~/.m2 can corrupt each other's downloads.
  const libsDir = await ensureKafkaLibs(p.cacheDir, log)
  const esHome = await ensureElasticsearchHome(p.cacheDir, log)
  const runAs = await ensureRunAs(log)
  await resetRunDirs(p)
  if (runAs !== undefined) {
    // Under a restrictive umask these would be 700 and the unprivileged Elasticsearch user could not pass through.
    for (const dir of [p.cacheDir, p.stateDir, p.logsDir]) await chmod(dir, 0o755)
  }
  const [port, controllerPort, httpPort, transportPort] = await freePorts(4) as [number, number, number, number]
  const state: State = {
    stateVersion: STATE_VERSION,
    startedAt: new Date().toISOString(),
    kafka: { pid: 0, port, controllerPort, version: await kafkaVersionOf(libsDir) },
    elasticsearch: { pid: 0, httpPort, transportPort, version: '' }
  }
  const kafkaLayout = { javaHome, libsDir, workDir: p.kafkaDir, logsDir: p.logsDir, port, controllerPort }
  const esLayout = { javaHome, home: esHome, workDir: p.elasticsearchDir, logsDir: p.logsDir, httpPort, transportPort, runAs }
  const kafkaLogs = Object.values(kafkaLogFiles(p.logsDir))
  const esLogs = [elasticsearchLogFiles(p.logsDir).stdout]
  const abort = new AbortController()
  try {
    // Elasticsearch first: it is the slow one, and formatting Kafka's storage overlaps with its boot.
    await prepareElasticsearch(esLayout)
    log(`Starting Elasticsearch on 127.0.0.1:${httpPort}${runAs === undefined ? '' : ` as ${runAs.name}`}…`)
    state.elasticsearch.pid = await startElasticsearch(esLayout)
    await writeState(p, state)
    const kafkaArgs = await prepareKafka(kafkaLayout).catch(async (err: unknown) => {
      throw await startupError('Kafka', `storage format failed: ${err instanceof Error ? err.message : String(err)}`, kafkaLogs)
    })
    log(`Starting Kafka on 127.0.0.1:${port} (controller 127.0.0.1:${controllerPort})…`)
    state.kafka.pid = await startKafka(kafkaLayout, kafkaArgs)
    await writeState(p, state)
    log('Waiting for both to become healthy…')
    const [, es] = await Promise.all([
      waitHealthy('Kafka', state.kafka.pid, async () => await checkKafka(brokersOf(state)), KAFKA_START_TIMEOUT_MS, kafkaLogs, abort.signal),
      waitHealthy('Elasticsearch', state.elasticsearch.pid, async () => await checkElasticsearch(urlOf(state)),
        ELASTICSEARCH_START_TIMEOUT_MS, esLogs, abort.signal)
    ])
    state.elasticsearch.version = es.version ?? 'unknown'
    await writeState(p, state)
    return infoOf(state, p)
  } catch (err) {
    // Leave nothing half-started behind; the logs stay for inspection.
    abort.abort()
    await stopAll(p, state).catch(() => undefined)
    throw err
  }
}

/** Stops both services (SIGTERM to each process group, SIGKILL after 15 s) and removes state.json. */
export async function down (opts: { root?: string } = {}): Promise<void> {
  const p = await pathsFor(opts.root)
  if (!await exists(p.stateDir)) return
  await withLock(p.lockFile, async () => await stopAll(p, await readState(p)))
}

async function statusOf (s: State): Promise<StackStatus> {
  const brokers = brokersOf(s)
  const url = urlOf(s)
  const [kafka, es] = await Promise.all([
    (async () => await isAlive(s.kafka.pid) ? await checkKafka(brokers) : { healthy: false, detail: `process ${s.kafka.pid} is not running` })(),
    (async () => await isAlive(s.elasticsearch.pid)
      ? await checkElasticsearch(url)
      : { healthy: false, detail: `process ${s.elasticsearch.pid} is not running` })()
  ])
  return {
    kafka: { ...kafka, version: s.kafka.version, brokers },
    elasticsearch: { healthy: es.healthy, detail: es.detail, version: s.elasticsearch.version === '' ? undefined : s.elasticsearch.version, url }
  }
}

/** Reports whether the recorded stack answers on its protocols. Never starts or stops anything. */
export async function status (opts: { root?: string } = {}): Promise<StackStatus> {
  const p = await pathsFor(opts.root)
  const s = await readState(p)
  if (s === undefined) {
    const detail = `not running (no state file at ${p.stateFile})`
    return { kafka: { healthy: false, detail }, elasticsearch: { healthy: false, detail } }
  }
  return await statusOf(s)
}
