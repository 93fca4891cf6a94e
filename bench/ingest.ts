/**
 * Ingest throughput: lines/s per parser (parse + finalize + hash + schema check) against the tailer alone
 * (read and split lines, the floor any collector pays), and file → Kafka (full collector with acks=all and
 * checkpoints) against kafkajs producing the same raw lines with the same batching (no parsing).
 */
import { mkdtemp, readFile, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { Kafka, logLevel, Partitioners } from 'kafkajs'
import { Tailer } from '../ingest/common/tail.ts'
import { emptyCheckpoint } from '../ingest/common/checkpoint.ts'
import { processLine, processLineToMessage } from '../ingest/common/collector.ts'
import { handlerFor, SOURCES } from '../ingest/sources.ts'
import { createLogger } from '../lib/log.ts'
import { loadAppConfig } from '../cli/config.ts'
import { startCollect } from '../cli/pipeline.ts'
import { ensureTopics } from '../lib/kafka.ts'
import { randomBytes } from 'node:crypto'

const TARGET_LINES = 200_000

/** Fixture per source type/format: real captured lines, repeated up to TARGET_LINES. */
const FIXTURES: Array<{ type: string, format?: string, options?: Record<string, unknown>, file: string }> = [
  { type: 'sshd', format: 'syslog', file: 'test/fixtures/sshd/auth-rfc3339.log' },
  { type: 'sshd', format: 'sshd-e', file: 'test/fixtures/sshd/sshd-e.log' },
  { type: 'vsftpd', format: 'native', file: 'test/fixtures/ftp/vsftpd-native.log' },
  { type: 'vsftpd', format: 'xferlog', file: 'test/fixtures/ftp/vsftpd-xferlog.log' },
  { type: 'proftpd', format: 'extended', file: 'test/fixtures/ftp/proftpd-extended.log' },
  { type: 'pure-ftpd', format: 'syslog', file: 'test/fixtures/ftp/pure-ftpd-syslog.log' },
  { type: 'mariadb-audit', format: 'file', file: 'test/fixtures/db/mariadb-audit.log' },
  { type: 'postgresql', format: 'jsonlog', file: 'test/fixtures/db/postgresql.json' },
  { type: 'postgresql', format: 'stderr', file: 'test/fixtures/db/postgresql.log' },
  { type: 'web-access', format: 'combined', file: 'test/fixtures/web-access/nginx-combined.log' }
]

async function exists (p: string): Promise<boolean> {
  try { await stat(p); return true } catch { return false }
}

/** The lines of `src` repeated up to `target` lines into a new file in `dir`. */
export async function repeatToFile (src: string, dir: string, target = TARGET_LINES): Promise<{ file: string, lines: number }> {
  const text = await readFile(src, 'utf8')
  const lines = text.split('\n').filter(l => l !== '')
  const out: string[] = []
  for (let i = 0; out.length < target; i++) out.push(lines[i % lines.length] as string)
  const file = join(dir, `bench-${randomBytes(3).toString('hex')}.log`)
  await writeFile(file, out.join('\n') + '\n')
  return { file, lines: out.length }
}

async function timeTailer (file: string, each?: (bytes: Buffer, t: import('../ingest/common/tail.ts').TailLine) => void): Promise<{ lines: number, ms: number }> {
  const t = new Tailer({ paths: [file], maxLineBytes: 1 << 20 }, emptyCheckpoint())
  const t0 = performance.now()
  let n = 0
  await t.refresh()
  for (;;) {
    const lines = await t.read(5000, 8 << 20)
    if (lines.length === 0) break
    for (const l of lines) { each?.(l.bytes, l); n++ }
  }
  const ms = performance.now() - t0
  await t.close()
  return { lines: n, ms }
}

function rate (lines: number, ms: number): string {
  return `${Math.round(lines / (ms / 1000)).toLocaleString('en-US')} lines/s`
}

export async function benchIngest (args: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'auditline-bench-'))
  try {
    process.stdout.write('\nParsers (parse + finalize + hash + schema check), ratio to the tailer alone on the same file:\n')
    process.stdout.write(`${'source'.padEnd(28)} ${'baseline (tailer)'.padStart(22)} ${'collector path'.padStart(22)} ${'ratio'.padStart(7)}\n`)
    const known = new Set(Object.keys(SOURCES))
    for (const fx of FIXTURES) {
      if (!known.has(fx.type) || !await exists(fx.file)) continue
      const { file } = await repeatToFile(fx.file, dir)
      const handler = handlerFor(fx.type, fx.format, fx.options ?? {})
      await timeTailer(file) // warm the page cache and the JIT
      const base = await timeTailer(file)
      const readAt = new Date()
      let seq = 0
      const pos = { host: 'bench', source: 'bench' }
      const full = await timeTailer(file, (_b, l) => {
        if (handler.toMessage !== undefined) processLineToMessage(l, handler.toMessage, handler.restricted, pos, seq++, readAt)
        else processLine(l, handler.parser, pos, seq++, readAt)
      })
      process.stdout.write(`${`${fx.type}${fx.format === undefined ? '' : `/${fx.format}`}`.padEnd(28)} ${rate(base.lines, base.ms).padStart(22)} ${rate(full.lines, full.ms).padStart(22)} ${(base.ms / full.ms).toFixed(3).padStart(7)}\n`)
    }
    if (args.includes('--no-kafka')) return
    await benchFileToKafka(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function benchFileToKafka (dir: string): Promise<void> {
  let brokers = process.env.KAFKA_BROKERS?.split(',')
  if (brokers === undefined || brokers[0] === '') {
    const { up } = await import('../deploy/local/stack.ts')
    brokers = (await up()).kafka.brokers
  }
  const fx = FIXTURES[0]
  if (fx === undefined || !await exists(fx.file)) return
  const { file, lines } = await repeatToFile(fx.file, dir)
  const topicPrefix = `bench${randomBytes(3).toString('hex')}.`
  const log = createLogger({ level: 'warn' })
  const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
  const cfg = loadAppConfig(undefined, {}, {
    kafka: { brokers, topicPrefix },
    ingest: { checkpointDir: join(dir, 'cp'), pollMs: 20, batchLines: 5000, sources: [{ name: 'bench', type: 'sshd', paths: [file] }] }
  })
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: `${topicPrefix}raw-baseline`, numPartitions: 3 }], waitForLeaders: true })
  await ensureTopics(admin, cfg.kafka, ['sshd', 'deadletter'])
  await admin.disconnect()

  // Baseline: the same lines, same batch size, idempotent producer with acks=all, no parsing, no checkpoint.
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const t0 = performance.now()
  let batch: Array<{ key: string, value: Buffer }> = []
  await timeTailer(file, b => { batch.push({ key: 'k', value: b }) })
  for (let i = 0; i < batch.length; i += 5000) await producer.send({ topic: `${topicPrefix}raw-baseline`, acks: -1, messages: batch.slice(i, i + 5000) })
  const baseMs = performance.now() - t0
  batch = []
  await producer.disconnect()

  const t1 = performance.now()
  const collector = await startCollect(cfg, ctx)
  await collector.drained()
  const fullMs = performance.now() - t1
  await collector.close()
  process.stdout.write('\nFile → Kafka (acks=all, idempotent), ratio to kafkajs producing the raw lines unparsed:\n')
  process.stdout.write(`${'path'.padEnd(28)} ${'baseline (raw produce)'.padStart(22)} ${'collector'.padStart(22)} ${'ratio'.padStart(7)}\n`)
  process.stdout.write(`${'sshd/syslog'.padEnd(28)} ${rate(lines, baseMs).padStart(22)} ${rate(lines, fullMs).padStart(22)} ${(baseMs / fullMs).toFixed(2).padStart(7)}\n\n`)
}
