/**
 * What `auditline run` fills in when the config leaves it open: the embedded mode when no Kafka or
 * Elasticsearch is configured (or the local stack of deploy/local with `--local-stack`), the machine's usual
 * logs that exist, are readable and hold lines — else the demo generator (ingest/demo) —, a first API key
 * (printed once, stored only as a hash) and a seal key.
 */
import { access, constants, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startDemo, type RunningDemo } from '../ingest/demo/run.ts'
import type { Logger } from '../lib/log.ts'
import { createKey } from '../lib/apikey.ts'
import { generateSealKey } from '../lib/seal.ts'
import { deepMerge, validateConfig } from '../lib/config.ts'
import { AppConfigSchema, embeddedFile, isEmbedded, type AppConfig } from './config.ts'
import type { ApiKey } from '../query-api/config.ts'

/** The machine's usual logs, in the formats their Debian packages write by default. */
export const MACHINE_SOURCES = [
  { name: 'auth-log', type: 'sshd', paths: ['/var/log/auth.log'] },
  { name: 'secure-log', type: 'sshd', paths: ['/var/log/secure'] },
  { name: 'vsftpd-log', type: 'vsftpd', paths: ['/var/log/vsftpd.log'] },
  { name: 'proftpd-log', type: 'proftpd', format: 'syslog', paths: ['/var/log/proftpd/proftpd.log'] },
  { name: 'proftpd-xferlog', type: 'proftpd', format: 'xferlog', paths: ['/var/log/proftpd/xferlog'] },
  { name: 'nginx-access', type: 'web-access', paths: ['/var/log/nginx/access.log'], options: { vhost: 'localhost' } },
  { name: 'apache-access', type: 'web-access', paths: ['/var/log/apache2/access.log'], options: { vhost: 'localhost' } }
] as const

async function readable (path: string): Promise<boolean> {
  try { await access(path, constants.R_OK); return true } catch { return false }
}

/** Readable and holding lines: an empty log of a freshly installed package has nothing to show yet. */
async function hasLines (path: string): Promise<boolean> {
  try { return await readable(path) && (await stat(path)).size > 0 } catch { return false }
}

export interface RunOptions {
  /** Generate demo logs (ingest/demo) instead of following the machine's logs. */
  demo?: boolean
  /** Without Kafka/Elasticsearch configured: start deploy/local's Kafka + Elasticsearch instead of the embedded mode. */
  localStack?: boolean
}

export async function prepareRun (cfg: AppConfig, log: Logger, opts: RunOptions = {}): Promise<{ cfg: AppConfig, apiKey?: string, notes: string[], demo?: RunningDemo }> {
  const over: Record<string, unknown> = {}
  const notes: string[] = []
  if (isEmbedded(cfg) && opts.localStack !== true) {
    notes.push(`Embedded mode: every stage in this process, stored in ${embeddedFile(cfg)} (no Kafka, Elasticsearch or Java). Set kafka.brokers and elasticsearch.url for the distributed mode.`)
  } else if (cfg.kafka.brokers.length === 0 && cfg.elasticsearch.url === '') {
    const { up } = await import('../deploy/local/stack.ts')
    log.info('No Kafka or Elasticsearch configured: starting the local stack (deploy/local).')
    const stack = await up({ log: (msg: string) => { log.info(msg) } })
    over.mode = 'distributed'
    over.kafka = { brokers: stack.kafka.brokers }
    over.elasticsearch = { url: stack.elasticsearch.url }
    notes.push(`Local stack: Kafka ${stack.kafka.version} at ${stack.kafka.brokers.join(',')}, Elasticsearch ${stack.elasticsearch.version} at ${stack.elasticsearch.url} (stop with npm run stack:down).`)
  }
  let demo: RunningDemo | undefined
  if (cfg.ingest.sources.length === 0 || opts.demo === true) {
    const sources = []
    if (opts.demo !== true) for (const s of MACHINE_SOURCES) if (await hasLines(s.paths[0])) sources.push(s)
    if (sources.length === 0) {
      const dir = join(cfg.stateDir, 'demo')
      demo = await startDemo({ dir, log: log.child({ component: 'ingest.demo' }) })
      sources.push(...demo.sources)
      notes.push(opts.demo === true
        ? `Demo data: generated logs in ${dir} (synthetic; see docs/sources/demo.md).`
        : `No readable machine logs with content (${MACHINE_SOURCES.map(s => s.paths[0]).join(', ')}): generating demo logs in ${dir} (synthetic; see docs/sources/demo.md). Configure ingest.sources to follow real logs.`)
    } else {
      notes.push(`Following ${sources.map(s => s.paths[0]).join(', ')}.`)
    }
    over.ingest = { sources }
  }
  let apiKey: string | undefined
  if (cfg.queryApi.apiKeys.length === 0) {
    const file = join(cfg.stateDir, 'api-keys.json')
    let keys: ApiKey[]
    try {
      keys = JSON.parse(await readFile(file, 'utf8')) as ApiKey[]
    } catch {
      const k = await createKey()
      keys = [{ id: k.id, hash: k.hash, roles: ['admin'], owner: 'local-admin' }]
      await mkdir(cfg.stateDir, { recursive: true })
      await writeFile(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 })
      apiKey = k.key
    }
    over.queryApi = { apiKeys: keys }
  }
  if (cfg.indexer.seal.privateKeyFile === undefined && cfg.indexer.seal.privateKey === undefined) {
    // Like the API key: a seal key made once and kept in stateDir, so that seals stay verifiable across restarts.
    const file = join(cfg.stateDir, 'seal-key.pem')
    const pub = join(cfg.stateDir, 'seal-key.pub.pem')
    if (!await readable(file)) {
      const k = generateSealKey()
      await mkdir(cfg.stateDir, { recursive: true })
      await writeFile(file, k.privatePem, { mode: 0o600, flag: 'wx' })
      await writeFile(pub, k.publicPem, { mode: 0o644 })
      notes.push(`Created the seal key ${file} (key id ${k.keyId}); verify with: auditline verify --public-key ${pub}`)
    }
    over.indexer = { seal: { privateKeyFile: file } }
  }
  try {
    const merged = validateConfig(AppConfigSchema, deepMerge(structuredClone(cfg) as unknown as Record<string, unknown>, over))
    return { cfg: merged, ...(apiKey === undefined ? {} : { apiKey }), notes, ...(demo === undefined ? {} : { demo }) }
  } catch (err) {
    await demo?.close()
    throw err
  }
}
