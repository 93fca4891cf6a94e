/**
 * What `auditline run` fills in when the config leaves it open: a local Kafka + Elasticsearch
 * (deploy/local) when neither is configured, the machine's readable auth log as a source, and a
 * first API key (printed once, stored only as a hash). Until the embedded store exists (#7), the
 * no-server default is the local stack.
 */
import { access, constants, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../lib/log.ts'
import { createKey } from '../lib/apikey.ts'
import { generateSealKey } from '../lib/seal.ts'
import { deepMerge, validateConfig } from '../lib/config.ts'
import { AppConfigSchema, type AppConfig } from './config.ts'
import type { ApiKey } from '../query-api/config.ts'

const DEFAULT_SOURCES = [
  { name: 'auth-log', type: 'sshd', paths: ['/var/log/auth.log'] },
  { name: 'secure-log', type: 'sshd', paths: ['/var/log/secure'] }
]

async function readable (path: string): Promise<boolean> {
  try { await access(path, constants.R_OK); return true } catch { return false }
}

export async function prepareRun (cfg: AppConfig, log: Logger): Promise<{ cfg: AppConfig, apiKey?: string, notes: string[] }> {
  const over: Record<string, unknown> = {}
  const notes: string[] = []
  if (cfg.kafka.brokers.length === 0 && cfg.elasticsearch.url === '') {
    const { up } = await import('../deploy/local/stack.ts')
    log.info('No Kafka or Elasticsearch configured: starting the local stack (deploy/local).')
    const stack = await up({ log: (msg: string) => { log.info(msg) } })
    over.kafka = { brokers: stack.kafka.brokers }
    over.elasticsearch = { url: stack.elasticsearch.url }
    notes.push(`Local stack: Kafka ${stack.kafka.version} at ${stack.kafka.brokers.join(',')}, Elasticsearch ${stack.elasticsearch.version} at ${stack.elasticsearch.url} (stop with npm run stack:down).`)
  }
  if (cfg.ingest.sources.length === 0) {
    const sources = []
    for (const s of DEFAULT_SOURCES) if (await readable(s.paths[0] as string)) sources.push(s)
    over.ingest = { sources }
    notes.push(sources.length === 0
      ? 'No log sources configured and no readable auth log found: add ingest.sources to the config.'
      : `Following ${sources.map(s => s.paths[0]).join(', ')}.`)
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
  const merged = validateConfig(AppConfigSchema, deepMerge(structuredClone(cfg) as unknown as Record<string, unknown>, over))
  return { cfg: merged, ...(apiKey === undefined ? {} : { apiKey }), notes }
}
