/**
 * `auditline <command>`: the one entry point. The only module that reads `process.env` and argv.
 */
import { Command, Option } from 'commander'
import { hostname } from 'node:os'
import { createLogger, type Logger } from '../lib/log.ts'
import { createRegistry, readinessOf, serveMetrics } from '../lib/metrics.ts'
import { AuditError, isAuditError } from '../lib/errors.ts'
import type { Ctx } from '../lib/component.ts'
import { createKey } from '../lib/apikey.ts'
import { embeddedFile, isEmbedded, loadAppConfig, type AppConfig } from './config.ts'
import { SqliteStore } from '../indexer/sqlite/store.ts'
import { startEmbedded } from './embedded.ts'
import { init, startCollect, startIndex, startServe, startAll, startPanelIntake, startAnonymize, startStats, startRetention, runRetention } from './pipeline.ts'
import { parseFile } from './parse-file.ts'
import { anonymizeStream, openInput } from './anonymize-file.ts'
import { SOURCES } from '../ingest/sources.ts'
import { prepareRun } from './run-defaults.ts'
import { verifyDeployment, verifyOptionsFrom, writeKeyPair, type VerifyFlags } from './verify.ts'
import { cliExport, cliVerifyExport, type ExportFlags } from './export.ts'

const program = new Command()
  .name('auditline')
  .description('Access logging and audit trail pipeline: collectors → Kafka → anonymizer → indexer → Elasticsearch → query API')
  .showHelpAfterError()

const configOption = new Option('-c, --config <file>', 'configuration file (YAML or JSON); AUDITLINE_* variables override it')

function load (opts: { config?: string }, overrides?: Record<string, unknown>): AppConfig {
  return loadAppConfig(opts.config, process.env, overrides)
}

function makeCtx (cfg: AppConfig): Ctx & { stop: AbortController } {
  const stop = new AbortController()
  return { log: createLogger({ level: cfg.log.level }), signal: stop.signal, metrics: createRegistry(), stop }
}

/** Runs until SIGINT/SIGTERM, then closes in order (stop intake → flush → commit → disconnect). */
async function serveUntilSignal (ctx: Ctx & { stop: AbortController }, cfg: AppConfig, close: () => Promise<void>): Promise<void> {
  // Called once the stage has started: ready while its watched Kafka/Elasticsearch clients are up, until the
  // shutdown begins (/readyz → 503). Clients going down while stopping are the shutdown itself, not news.
  const readiness = readinessOf(ctx.metrics)
  readiness.onChange(c => {
    if (ctx.stop.signal.aborted) return
    if (c.up) ctx.log.info({ client: c.client }, 'Client is up.')
    else ctx.log.warn({ client: c.client, reason: c.reason }, 'Client is down; /readyz answers 503.')
  })
  const ready = (): boolean => !ctx.stop.signal.aborted && readiness.ready()
  const metrics = cfg.metrics.port >= 0 ? await serveMetrics(ctx.metrics, cfg.metrics.host, cfg.metrics.port, { ready }) : undefined
  if (metrics !== undefined) ctx.log.info({ metrics: metrics.url }, 'Metrics endpoint ready.')
  await new Promise<void>(resolve => {
    const onSignal = (sig: string): void => {
      ctx.log.info({ signal: sig }, 'Shutting down.')
      resolve()
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  })
  ctx.stop.abort()
  const timer = setTimeout(() => { ctx.log.error('Shutdown took longer than 10 s; exiting.'); process.exit(1) }, 10_000)
  timer.unref()
  await close()
  await metrics?.close()
}

program.command('init')
  .description('create the Kafka topics and Elasticsearch index templates, or the embedded store\'s file (idempotent)')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    if (isEmbedded(cfg)) {
      SqliteStore.open(embeddedFile(cfg), { indexPrefix: cfg.elasticsearch.indexPrefix }).close()
      process.stdout.write(JSON.stringify({ mode: 'embedded', file: embeddedFile(cfg) }, null, 2) + '\n')
      return
    }
    const ctx = makeCtx(cfg)
    const res = await init(cfg, ctx)
    process.stdout.write(JSON.stringify(res, null, 2) + '\n')
  })

program.command('collect')
  .description('tail the configured log sources and produce their events to Kafka')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    const running = await startCollect(cfg, ctx)
    await serveUntilSignal(ctx, cfg, () => running.close())
  })

program.command('panel')
  .description('serve the control-panel HTTP intake: change events POSTed by the panel go to Kafka (docs/sources/panel-http.md)')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    if (cfg.panel.clients.length === 0) throw new AuditError('AUD_ERR_CONFIG_INVALID', ['panel.clients is empty: no panel could authenticate (see docs/sources/panel-http.md, "Keys")'])
    const ctx = makeCtx(cfg)
    const running = await startPanelIntake(cfg, ctx)
    await serveUntilSignal(ctx, cfg, () => running.close())
  })

program.command('index')
  .description('consume audit topics and index them into Elasticsearch')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    const running = await startIndex(cfg, ctx)
    // Scheduled retention runs next to the indexer (retention.intervalMs; 0 = off).
    const retention = await startRetention(cfg, ctx)
    await serveUntilSignal(ctx, cfg, async () => {
      await retention.close()
      await running.close()
    })
  })

program.command('retention')
  .description('delete the daily indices whose retention period (retention.classes) has passed, each recorded as an audit event before and after (docs/retention.md)')
  .addOption(configOption)
  .option('--dry-run', 'only list what would be deleted (with document counts); nothing is deleted or recorded')
  .option('--at <time>', 'with --dry-run: plan as of this RFC 3339 time instead of now')
  .action(async (opts: { config?: string, dryRun?: boolean, at?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    let now: (() => Date) | undefined
    if (opts.at !== undefined) {
      // Deleting by any clock other than the real one would delete data early: only a dry run may look ahead.
      if (opts.dryRun !== true) throw new AuditError('AUD_ERR_CLI_USAGE', ['--at is allowed with --dry-run only'])
      const at = new Date(opts.at)
      if (Number.isNaN(at.getTime())) throw new AuditError('AUD_ERR_CLI_USAGE', [`--at is not a time: ${opts.at}`])
      now = () => at
    }
    const report = await runRetention(cfg, ctx, { dryRun: opts.dryRun === true, ...(now === undefined ? {} : { now }) })
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  })

program.command('anonymize-stage')
  .description('run the anonymizer stage: web.access.raw.v1 → web.access.anon.v1 (epoch keys in memory only)')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    const running = await startAnonymize(cfg, ctx)
    await serveUntilSignal(ctx, cfg, () => running.close())
  })

program.command('stats-stage')
  .description('run the statistics stage: web.access.anon.v1 → stats.web.v1 (per site, hour and day)')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    const running = await startStats(cfg, ctx)
    await serveUntilSignal(ctx, cfg, () => running.close())
  })

program.command('serve')
  .description('serve the query API')
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = load(opts)
    const ctx = makeCtx(cfg)
    const running = await startServe(cfg, ctx)
    ctx.log.info({ url: running.url }, 'Query API listening.')
    await serveUntilSignal(ctx, cfg, () => running.close())
  })

program.command('run')
  .description('run every stage in one process: embedded (one SQLite file, no servers) when no Kafka/Elasticsearch is configured, else against them')
  .addOption(configOption)
  .option('--demo', 'generate realistic demo logs of every event class (ingest/demo) instead of following the machine\'s logs')
  .option('--local-stack', 'without Kafka/Elasticsearch configured: start deploy/local\'s Kafka + Elasticsearch (needs Java) instead of the embedded mode')
  .action(async (opts: { config?: string, demo?: boolean, localStack?: boolean }) => {
    const base = load(opts)
    const log = createLogger({ level: base.log.level })
    const { cfg, apiKey, notes, demo } = await prepareRun(base, log, { ...(opts.demo === true ? { demo: true } : {}), ...(opts.localStack === true ? { localStack: true } : {}) })
    const ctx = { ...makeCtx(cfg), log }
    let running
    try {
      running = isEmbedded(cfg) ? await startEmbedded(cfg, ctx) : await startAll(cfg, ctx)
    } catch (err) {
      await demo?.close()
      throw err
    }
    for (const n of notes) log.info(n)
    process.stdout.write(`\nauditline is running (${isEmbedded(cfg) ? 'embedded' : 'distributed'} mode).\n  Web UI: ${running.url}/\n  Query API: ${running.url}/v1/events\n` +
      (apiKey === undefined ? '' : `  API key (shown once, stored hashed in ${cfg.stateDir}/api-keys.json): ${apiKey}\n`) +
      `  Try: curl -H 'Authorization: ApiKey <key>' '${running.url}/v1/events?size=5&reason=first+look'\n` +
      (running.panel === undefined ? '' : `  Panel intake: ${running.panel.url}/v1/panel-events\n`) + '\n')
    const stages = running
    await serveUntilSignal(ctx, cfg, async () => {
      await demo?.close()
      await stages.close()
    })
  })

program.command('parse')
  .description('print the events a collector would produce from FILE as ECS JSON lines (stdout) and its dead letters with reasons (stderr), without Kafka')
  .requiredOption('-s, --source <type>', `source type: ${Object.keys(SOURCES).join(', ')}`)
  .option('-f, --format <format>', 'line format, where the source has several (sshd: syslog, journal, sshd-e)')
  .option('--host <name>', 'collector host name for host.name and the stream id', hostname())
  .option('-o, --options <json>', 'source options as JSON, as under ingest.sources[].options', '{}')
  .option('--strict', 'exit with status 1 when any line became a dead letter')
  .argument('<file>', 'log file to read')
  .action(async (file: string, opts: { source: string, format?: string, host: string, options: string, strict?: boolean }) => {
    let options: Record<string, unknown>
    try {
      options = JSON.parse(opts.options) as Record<string, unknown>
    } catch (err) {
      throw new AuditError('AUD_ERR_CLI_USAGE', [`--options is not JSON: ${(err as Error).message}`])
    }
    const summary = await parseFile(file, opts.source, opts.format, opts.host, {
      event: e => { process.stdout.write(JSON.stringify(e) + '\n') },
      dead: d => { process.stderr.write(JSON.stringify({ deadletter: d }) + '\n') }
    }, options)
    process.stderr.write(JSON.stringify({ summary }) + '\n')
    if (opts.strict === true && summary.deadLetters > 0) process.exitCode = 1
  })

program.command('anonymize')
  .description('write an anonymized copy of a web access log (every IP rewritten, personal query parameters and e-mail addresses scrubbed) to stdout, in its own format')
  .addOption(configOption)
  .argument('[file]', 'log file, or - for standard input', '-')
  .action(async (file: string, opts: { config?: string }) => {
    const cfg = load(opts)
    const lines = await anonymizeStream(openInput(file), process.stdout, cfg.anonymizer)
    process.stderr.write(JSON.stringify({ summary: { lines } }) + '\n')
  })

program.command('apikey')
  .description('create an API key: prints the key once and the config entry holding only its hash')
  .requiredOption('--role <role...>', 'roles: security, auditor, stats, admin')
  .requiredOption('--owner <name>', 'who holds the key')
  .option('--tenant <id>', 'tenant whose sites a stats key may read')
  .action(async (opts: { role: string[], owner: string, tenant?: string }) => {
    const k = await createKey()
    const entry = { id: k.id, hash: k.hash, roles: opts.role, owner: opts.owner, ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }) }
    process.stdout.write(`key: ${k.key}\nconfig entry (queryApi.apiKeys):\n${JSON.stringify(entry, null, 2)}\n`)
  })

program.command('verify')
  .description('re-read the indexed events and the seal checkpoints; print one JSON line per event changed, deleted or inserted after sealing, per break in the checkpoint chain and per gap in a stream\'s sequence numbers (summary on stderr); exit 1 on any finding (docs/integrity.md)')
  .addOption(configOption)
  .option('--index <pattern>', 'indices to verify (comma list, * wildcards, -exclusions); default every event index')
  .option('--from <time>', 'verify events with @timestamp at or after this RFC 3339 time')
  .option('--to <time>', 'verify events with @timestamp at or before this RFC 3339 time')
  .option('--public-key <file...>', 'Ed25519 public key(s) (PEM) the checkpoints must be signed with; default: derived from indexer.seal')
  .option('--grace-ms <ms>', 'how long after event.ingested an unsealed event counts as pending; default 2 × indexer.seal.sliceMs + elasticsearch.requestTimeoutMs + 60 s')
  .option('--dead-letters', 'read the dead-letter topic (Kafka) to tell sequence gaps explained by dead letters from losses')
  .option('--head <seq:hash>', 'chain_head:chain_head_hash of an earlier run\'s summary: that checkpoint must still be there, unchanged (detects a chain cut short)')
  .action(async (flags: VerifyFlags & { config?: string }) => {
    const cfg = load(flags)
    // Findings go to stdout; the service log (warnings only) to stderr, so that stdout stays JSON lines.
    const log = createLogger({ level: 'warn', destination: process.stderr })
    const summary = await verifyDeployment(cfg, verifyOptionsFrom(cfg, flags), f => { process.stdout.write(JSON.stringify(f) + '\n') }, log)
    process.stderr.write(JSON.stringify({ summary }) + '\n')
    if (!summary.clean) process.exitCode = 1
  })

program.command('export')
  .description('write an evidence bundle (docs/exports.md) of the events matching the filters to --out DIR: events, inclusion proofs, signed root statements, public key, manifest; progress on stderr')
  .addOption(configOption)
  .requiredOption('--case <id>', 'case id the export is made for')
  .requiredOption('--reason <text>', 'why the export is made')
  .requiredOption('--out <dir>', 'directory to write the bundle to (created; must be empty)')
  .option('--from <time>', 'events with @timestamp at or after this RFC 3339 time')
  .option('--to <time>', 'events with @timestamp before this RFC 3339 time')
  .option('--category <c...>', 'event.category')
  .option('--action <a...>', 'event.action')
  .option('--outcome <o...>', 'event.outcome: success, failure, unknown')
  .option('--user <name...>', 'user.name')
  .option('--host <name...>', 'host.name')
  .option('--source-ip <ip>', 'source.ip: an address or a CIDR block')
  .option('--class <c...>', 'auditline.class')
  .option('--ticket <id>', 'panel.ticket_id')
  .option('--customer <id>', 'panel.customer')
  .option('--q <text>', 'free text (matched as words)')
  .option('--session <id>', 'ssh/ftp session or db connection id')
  .option('--stream <stream>', 'collector stream (auditline.stream)')
  .action(async (flags: ExportFlags & { config?: string }) => {
    const cfg = load(flags)
    const r = await cliExport(cfg, flags, process.stderr)
    process.stdout.write(`${r.dir}: ${r.events} events${r.unsealed > 0 ? ` (${r.unsealed} matching events not sealed yet were left out)` : ''}\n`)
  })

program.command('verify-export')
  .description('check an evidence bundle (directory or tar) offline: file hashes, every event\'s hash, every inclusion proof, the root statements\' signatures and chain; exit 1 and one line per problem (file, line, event) on any change, addition or removal')
  .argument('<bundle>', 'bundle directory or .tar')
  .option('--public-key <file>', 'Ed25519 public key (PEM) the operator published; default: the bundle\'s own public-key.pem (then compare the printed key id)')
  .action(async (bundle: string, opts: { publicKey?: string }) => {
    const r = await cliVerifyExport(bundle, opts.publicKey)
    for (const n of r.notes) process.stderr.write(`note: ${n}\n`)
    for (const p of r.problems) process.stdout.write(`FAIL ${p}\n`)
    if (r.ok) {
      process.stdout.write(`OK ${r.events} events, ${r.checkpoints} signed root statements\n`)
    } else {
      process.stderr.write(`auditline: AUD_ERR_EXPORT_VERIFY: ${r.problems.length} problem(s) in ${bundle}\n`)
      process.exitCode = 1
    }
  })

program.command('keygen')
  .description('create the Ed25519 key pair the indexer signs seal checkpoints with: PREFIX.pem (private, mode 0600) and PREFIX.pub.pem (for auditline verify); never overwrites')
  .option('--out <prefix>', 'file name prefix', 'seal-key')
  .action(async (opts: { out: string }) => {
    const k = await writeKeyPair(opts.out)
    process.stdout.write(`private key: ${k.privateFile} (set indexer.seal.privateKeyFile to it; keep it secret)\npublic key:  ${k.publicFile} (give it to auditors: auditline verify --public-key ${k.publicFile})\nkey id:      ${k.keyId}\n`)
  })

function fail (err: unknown, log?: Logger): never {
  if (isAuditError(err)) {
    process.stderr.write(`auditline: ${err.code}: ${err.message}\n`)
  } else {
    (log ?? createLogger()).error({ err }, 'Unexpected failure.')
    process.stderr.write(`auditline: ${(err as Error).message}\n`)
  }
  process.exit(isAuditError(err, 'AUD_ERR_CONFIG_INVALID') || isAuditError(err, 'AUD_ERR_CLI_USAGE') ? 2 : 1)
}

program.parseAsync(process.argv).then(
  () => { if (process.exitCode === undefined) process.exit(0) },
  err => { fail(err) }
)
