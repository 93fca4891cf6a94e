/**
 * `auditline export` (the exporter of query-api/exports.ts without the HTTP server) and
 * `auditline verify-export` (offline: only the bundle and, preferably, a public key obtained out of band).
 */
import { randomUUID } from 'node:crypto'
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { userInfo } from 'node:os'
import { createEsClient } from '../lib/elasticsearch.ts'
import { sealsIndexName } from '../lib/seal-template.ts'
import { AuditError } from '../lib/errors.ts'
import { readTar, verifyBundle, type Bundle, type VerifyResult } from '../lib/evidence.ts'
import { loadSealKey } from '../indexer/elasticsearch/seal.ts'
import { ElasticsearchEventStore } from '../query-api/store/elasticsearch.ts'
import { ExportJobs, elasticsearchSeals, runExport, type Progress, type SealSource } from '../query-api/exports.ts'
import type { Logger } from '../lib/log.ts'
import { toFilter, type EventsQueryT } from '../query-api/routes/events.ts'
import { isEmbedded, type AppConfig } from './config.ts'
import { openEmbeddedRead } from './embedded.ts'
import type { EventStore } from '../query-api/store/types.ts'

const usage = (msg: string): AuditError => new AuditError('AUD_ERR_CLI_USAGE', [msg])

/** The seal public key bundles ship: `queryApi.exports.publicKeyFile`, else derived from a configured `indexer.seal` key. */
export function exportPublicKeyPem (cfg: AppConfig): string | undefined {
  const file = cfg.queryApi.exports.publicKeyFile
  if (file !== undefined) {
    try {
      return createPublicKey(readFileSync(file, 'utf8')).export({ type: 'spki', format: 'pem' }).toString()
    } catch (err) {
      throw new AuditError('AUD_ERR_CONFIG_INVALID', [`queryApi.exports.publicKeyFile: cannot use ${file}: ${(err as Error).message}`])
    }
  }
  // A throw-away indexer key would be a different one in every process: no key rather than a wrong one.
  if (cfg.indexer.seal.privateKeyFile === undefined && cfg.indexer.seal.privateKey === undefined) return undefined
  return loadSealKey(cfg.indexer.seal).publicPem
}

export function exportsDir (cfg: AppConfig): string {
  return cfg.queryApi.exports.dir !== '' ? cfg.queryApi.exports.dir : join(cfg.stateDir, 'exports')
}

/** The query API's export jobs over a store (either mode), configured from `queryApi.exports`. */
export function exportJobs (cfg: AppConfig, log: Logger, store: EventStore, seals: SealSource): ExportJobs {
  return new ExportJobs({
    store,
    seals,
    dir: exportsDir(cfg),
    maxEvents: cfg.queryApi.exports.maxEvents,
    publicKeyPem: exportPublicKeyPem(cfg),
    onError: (job, err) => { log.error({ err, export_id: job.id, error_code: job.error?.code }, 'Evidence export failed.') }
  })
}

export interface ExportFlags {
  case: string
  reason: string
  out: string
  from?: string
  to?: string
  category?: string[]
  action?: string[]
  outcome?: string[]
  user?: string[]
  host?: string[]
  sourceIp?: string
  class?: string[]
  ticket?: string
  customer?: string
  q?: string
  session?: string
  stream?: string
}

/** The filters of the command line, checked like the API's query parameters. */
export function filterFromFlags (f: ExportFlags, maxRangeDays: number): ReturnType<typeof toFilter> {
  for (const [name, v] of [['--from', f.from], ['--to', f.to]] as const) {
    if (v !== undefined && Number.isNaN(Date.parse(v))) throw usage(`${name} is not an RFC 3339 time: ${v}`)
  }
  for (const o of f.outcome ?? []) if (!['success', 'failure', 'unknown'].includes(o)) throw usage(`--outcome must be success, failure or unknown, not ${o}`)
  const q: Partial<EventsQueryT> = {
    ...(f.from === undefined ? {} : { from: f.from }),
    ...(f.to === undefined ? {} : { to: f.to }),
    ...(f.category === undefined ? {} : { 'event.category': f.category }),
    ...(f.action === undefined ? {} : { 'event.action': f.action }),
    ...(f.outcome === undefined ? {} : { 'event.outcome': f.outcome as EventsQueryT['event.outcome'] }),
    ...(f.user === undefined ? {} : { 'user.name': f.user }),
    ...(f.host === undefined ? {} : { 'host.name': f.host }),
    ...(f.sourceIp === undefined ? {} : { 'source.ip': f.sourceIp }),
    ...(f.class === undefined ? {} : { class: f.class }),
    ...(f.ticket === undefined ? {} : { ticket: f.ticket }),
    ...(f.customer === undefined ? {} : { customer: f.customer }),
    ...(f.q === undefined ? {} : { q: f.q }),
    ...(f.session === undefined ? {} : { session: f.session }),
    ...(f.stream === undefined ? {} : { stream: f.stream })
  }
  try {
    return toFilter(q as EventsQueryT, maxRangeDays)
  } catch (err) {
    throw usage((err as Error).message)
  }
}

/** A progress bar when stderr is a terminal, else a plain line per phase and per tenth of the work. */
export function progressReporter (out: NodeJS.WriteStream | { isTTY?: boolean, write: (s: string) => unknown }): { update: (p: Progress) => void, end: () => void } {
  let lastLine = ''
  let drawn = false
  return {
    update (p) {
      const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0
      if (out.isTTY === true) {
        const width = 30
        const fill = Math.round(frac * width)
        out.write(`\r${p.phase.padEnd(7)} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${p.done}/${p.total} events`)
        drawn = true
        return
      }
      const line = `export: ${p.phase} ${Math.floor(frac * 10) * 10}%`
      if (line !== lastLine) { out.write(`${line} (${p.done}/${p.total} events)\n`); lastLine = line }
    },
    end () { if (drawn) out.write('\n') }
  }
}

export async function cliExport (cfg: AppConfig, flags: ExportFlags, stderr: NodeJS.WriteStream): Promise<{ dir: string, events: number, unsealed: number }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._#/-]*$/.test(flags.case) || flags.case.length > 128) throw usage('--case must be 1-128 characters of letters, digits and ._#/- starting with a letter or digit')
  if (flags.reason.trim().length < 3) throw usage('--reason must say why (at least 3 characters)')
  const filter = filterFromFlags(flags, cfg.queryApi.maxRangeDays)
  const pem = exportPublicKeyPem(cfg)
  if (pem === undefined) throw new AuditError('AUD_ERR_EXPORT_BUILD', ['no seal public key configured (queryApi.exports.publicKeyFile, or indexer.seal.privateKeyFile)'])
  try {
    if ((await readdir(flags.out)).length > 0) throw usage(`--out ${flags.out} is not empty`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const stores = isEmbedded(cfg) ? openEmbeddedRead(cfg) : openEsRead(cfg)
  const bar = progressReporter(stderr)
  try {
    const id = randomUUID()
    const { bundle, manifest } = await runExport(
      stores.store,
      stores.seals,
      filter,
      { id, caseId: flags.case, reason: flags.reason, requester: `cli:${userInfo().username}`, query: { ...filter }, created: new Date().toISOString() },
      { maxEvents: cfg.queryApi.exports.maxEvents, publicKeyPem: pem, onProgress: p => { bar.update(p) } }
    )
    bar.end()
    await mkdir(flags.out, { recursive: true, mode: 0o700 })
    for (const [name, data] of bundle) await writeFile(join(flags.out, name), data, { mode: 0o600 })
    return { dir: flags.out, events: manifest.counts.events, unsealed: manifest.counts.unsealed_skipped }
  } finally {
    await stores.close()
  }
}

function openEsRead (cfg: AppConfig): { store: EventStore, seals: SealSource, close: () => Promise<void> } {
  const es = createEsClient(cfg.elasticsearch)
  return {
    store: new ElasticsearchEventStore(es, cfg.elasticsearch.indexPrefix),
    seals: elasticsearchSeals(es, sealsIndexName(cfg.elasticsearch.indexPrefix)),
    close: async () => { await es.close() }
  }
}

/** Reads a bundle: a directory of files, or a tar (as the API serves it). */
export async function readBundle (path: string): Promise<Bundle> {
  let isDir: boolean
  try {
    isDir = statSync(path).isDirectory()
  } catch (err) {
    throw usage(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!isDir) {
    try {
      return readTar(await readFile(path))
    } catch (err) {
      throw new AuditError('AUD_ERR_EXPORT_VERIFY', [`${path} is not a readable tar: ${(err as Error).message}`])
    }
  }
  const out: Bundle = new Map()
  for (const name of await readdir(path)) {
    if (statSync(join(path, name)).isFile()) out.set(name, await readFile(join(path, name)))
  }
  return out
}

export async function cliVerifyExport (path: string, publicKeyFile: string | undefined): Promise<VerifyResult> {
  let key: KeyObject | undefined
  if (publicKeyFile !== undefined) {
    try {
      key = createPublicKey(readFileSync(publicKeyFile, 'utf8'))
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an ${String(key.asymmetricKeyType)} key, not Ed25519`)
    } catch (err) {
      throw usage(`--public-key ${publicKeyFile}: ${(err as Error).message}`)
    }
  }
  return verifyBundle(await readBundle(path), key)
}
