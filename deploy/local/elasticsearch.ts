// A single Elasticsearch node from the integ-test distribution, on loopback only. That distribution is the bare
// server plus a few modules (x-pack-core, x-pack-security, transport-netty4, apm): no ingest pipelines, painless,
// analysis-common, ILM or data streams, and no `GET /` handler. Health is therefore read from _cluster/health.
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run, spawnDetached } from './proc.ts'
import type { Health } from './kafka.ts'

/** Elasticsearch refuses to run as root; when we are root it runs as this unprivileged system user. */
export const ES_USER = 'auditline-es'

export interface RunAs { name: string, uid: number, gid: number }

export interface ElasticsearchLayout {
  javaHome: string
  /** The unpacked distribution in the cache; read-only at runtime. */
  home: string
  /** Fresh per run: config/ (ES_PATH_CONF), data/ and tmp/. */
  workDir: string
  logsDir: string
  httpPort: number
  transportPort: number
  runAs: RunAs | undefined
}

export function elasticsearchLogFiles (logsDir: string): { stdout: string, dir: string } {
  // stdout carries the console appender (the full INFO log); dir is path.logs (JSON logs, deprecation, GC).
  return { stdout: join(logsDir, 'elasticsearch.log'), dir: join(logsDir, 'elasticsearch') }
}

async function lookupUser (name: string): Promise<RunAs | undefined> {
  try {
    const [, , uid, gid] = (await run('getent', ['passwd', name])).trim().split(':')
    return { name, uid: Number(uid), gid: Number(gid) }
  } catch {
    return undefined // getent exits 2 when the user does not exist
  }
}

/** When running as root, returns the user to drop to, creating it on first use. */
export async function ensureRunAs (log: (msg: string) => void): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const existing = await lookupUser(ES_USER)
  if (existing !== undefined) return existing
  log(`Creating system user ${ES_USER} (Elasticsearch refuses to run as root)…`)
  await run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ES_USER])
  const created = await lookupUser(ES_USER)
  if (created === undefined) throw new Error(`useradd succeeded but user ${ES_USER} cannot be looked up.`)
  return created
}

function elasticsearchYml (l: ElasticsearchLayout): string {
  const settings: Record<string, string | number | boolean> = {
    'cluster.name': 'auditline-local',
    'node.name': 'auditline-local-1',
    'discovery.type': 'single-node',
    'network.host': '127.0.0.1',
    'http.port': l.httpPort,
    'transport.port': l.transportPort,
    'path.data': join(l.workDir, 'data'),
    'path.logs': elasticsearchLogFiles(l.logsDir).dir,
    // The distribution ships x-pack-security; without this it would demand TLS and passwords.
    'xpack.security.enabled': false,
    // A nearly full developer disk must not turn indices read-only in the middle of a test run.
    'cluster.routing.allocation.disk.threshold_enabled': false,
    // Tests clean up with wildcard index deletes.
    'action.destructive_requires_name': false
  }
  // JSON strings are valid YAML scalars, so paths with odd characters stay intact.
  return Object.entries(settings).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n') + '\n'
}

/** Builds ES_PATH_CONF from the distribution's config, pointed at the run's directories, and hands the run's
 * directories to the unprivileged user. */
export async function prepareElasticsearch (l: ElasticsearchLayout): Promise<void> {
  const configDir = join(l.workDir, 'config')
  const { dir: esLogsDir } = elasticsearchLogFiles(l.logsDir)
  await mkdir(join(l.workDir, 'data'), { recursive: true })
  await mkdir(join(l.workDir, 'tmp'), { recursive: true })
  await mkdir(esLogsDir, { recursive: true })
  await cp(join(l.home, 'config'), configDir, { recursive: true })
  await writeFile(join(configDir, 'elasticsearch.yml'), elasticsearchYml(l))
  // jvm.options writes GC logs, crash files and heap dumps relative to ES_HOME (the launcher cd's there); keep them
  // with this run instead, so the cached distribution stays untouched and needs no write access.
  const jvmOptions = join(configDir, 'jvm.options')
  const options = (await readFile(jvmOptions, 'utf8'))
    .replaceAll('=logs/', `=${esLogsDir}/`)
    .replaceAll('HeapDumpPath=data', `HeapDumpPath=${join(l.workDir, 'data')}`)
  await writeFile(jvmOptions, options)
  if (l.runAs !== undefined) {
    const owner = `${l.runAs.uid}:${l.runAs.gid}`
    // config/ must be writable too: Elasticsearch creates its keystore there on first start.
    await run('chown', ['-R', owner, l.workDir, esLogsDir])
    await checkAccess(l)
  }
}

/** The unprivileged user must reach the cached distribution and the run directory through every parent directory
 * (a repository under /root, mode 700, would not do). Checking as that user gives a clear error up front. */
async function checkAccess (l: ElasticsearchLayout): Promise<void> {
  if (l.runAs === undefined) return
  const script = join(l.home, 'bin', 'elasticsearch')
  try {
    await run('test', ['-r', script, '-a', '-x', script, '-a', '-w', join(l.workDir, 'data')], { uid: l.runAs.uid, gid: l.runAs.gid })
  } catch (err) {
    throw new Error(`User ${l.runAs.name} cannot read ${script} or write ${l.workDir}: every parent directory of the ` +
      'repository\'s .cache/ must be searchable by others (chmod o+x), or move the repository.', { cause: err })
  }
}

export async function startElasticsearch (l: ElasticsearchLayout): Promise<number> {
  return await spawnDetached(join(l.home, 'bin', 'elasticsearch'), [], {
    cwd: l.home,
    // A minimal environment: JAVA_TOOL_OPTIONS, JAVA_HOME and friends from the caller would only cause warnings or
    // surprises; HOME points somewhere the unprivileged user may write.
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: join(l.workDir, 'tmp'),
      ES_JAVA_HOME: l.javaHome,
      ES_JAVA_OPTS: '-Xms512m -Xmx512m',
      ES_PATH_CONF: join(l.workDir, 'config'),
      ES_TMPDIR: join(l.workDir, 'tmp')
    },
    logFile: elasticsearchLogFiles(l.logsDir).stdout,
    ...(l.runAs === undefined ? {} : { uid: l.runAs.uid, gid: l.runAs.gid })
  })
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function describeFetchError (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code
  return code === undefined ? err.message : `${err.message} (${code})`
}

async function getJson (url: string, timeoutMs: number): Promise<{ status: number, body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  const text = await res.text()
  try {
    return { status: res.status, body: JSON.parse(text) }
  } catch {
    return { status: res.status, body: text }
  }
}

/** Healthy = the cluster reports green or yellow (a single node cannot place replicas, so yellow is normal). */
export async function checkElasticsearch (url: string, timeoutMs = 5_000): Promise<Health & { version?: string }> {
  try {
    const health = await getJson(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, timeoutMs)
    const status = isRecord(health.body) && typeof health.body.status === 'string' ? health.body.status : undefined
    if (health.status !== 200 || (status !== 'green' && status !== 'yellow')) {
      return { healthy: false, detail: `cluster health is ${status ?? `HTTP ${health.status}`}` }
    }
    const version = await nodeVersion(url, timeoutMs)
    return { healthy: true, detail: `cluster auditline-local is ${status}`, ...(version === undefined ? {} : { version }) }
  } catch (err) {
    return { healthy: false, detail: `no HTTP answer from ${url}: ${describeFetchError(err)}` }
  }
}

async function nodeVersion (url: string, timeoutMs: number): Promise<string | undefined> {
  const { body } = await getJson(`${url}/_nodes/_local`, timeoutMs)
  if (!isRecord(body) || !isRecord(body.nodes)) return undefined
  for (const node of Object.values(body.nodes)) {
    if (isRecord(node) && typeof node.version === 'string') return node.version
  }
  return undefined
}
