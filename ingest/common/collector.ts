/**
 * The file collector loop shared by every log source: read a bounded batch of lines → parse →
 * produce events and dead letters → wait for Kafka's acknowledgement (acks=all) → only then save the
 * checkpoint. While Kafka refuses, the same batch is retried with backoff and nothing more is read,
 * so memory stays bounded and a crash at any point loses nothing (the batch is re-read and re-sent
 * with the same ids and sequence numbers).
 */
import { isUtf8 } from 'node:buffer'
import type { Producer, Message } from 'kafkajs'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../lib/log.ts'
import { sleep, backoff } from '../../lib/component.ts'
import { AuditError, isAuditError } from '../../lib/errors.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import { CheckpointStore } from './checkpoint.ts'
import { Tailer, type TailLine } from './tail.ts'
import type { LineParser } from './parser.ts'
import { finalizeEvent, streamId, type Position } from './finalize.ts'

export interface FileCollectorOptions {
  source: string
  host: string
  paths: readonly string[]
  parser: LineParser
  checkpointDir: string
  topic: string
  deadletterTopic: string
  maxLineBytes: number
  batchLines: number
  batchBytes: number
  pollMs: number
  rotatedIdleMs?: number
}

export interface CollectorIo {
  log: Logger
  producer: Pick<Producer, 'sendBatch'>
  metrics: Registry
}

/** One line's outcome: an event, a dead letter, or nothing (skipped). Pure apart from the clock. */
export type LineOutcome = { event: AuditEvent } | { dead: DeadLetter } | { skip: true }

export function processLine (line: TailLine, parser: LineParser, pos: Omit<Position, 'fileKey' | 'generation' | 'offset' | 'path'>, sequence: number, readAt: Date): LineOutcome {
  const stream = streamId(pos.host, pos.source)
  const where = { stream, path: line.path, file_key: line.fileKey, generation: line.generation, offset: line.offset }
  const dead = (code: string, reason: string): LineOutcome => {
    const utf8 = isUtf8(line.bytes)
    return {
      dead: {
        '@timestamp': readAt.toISOString(),
        stage: 'ingest',
        code,
        reason,
        source: where,
        sequence,
        original: line.bytes.toString(utf8 ? 'utf8' : 'base64'),
        original_encoding: utf8 ? 'utf8' : 'base64',
        original_length: line.length
      }
    }
  }
  if (line.truncated) return dead('AUD_ERR_INGEST_LINE_TOO_LONG', `line of ${line.length} bytes is longer than the maximum`)
  if (!isUtf8(line.bytes)) return dead('AUD_ERR_INGEST_PARSE', 'line is not valid UTF-8')
  const text = line.bytes.toString('utf8')
  if (text.trim() === '') return { skip: true }
  let result
  try {
    result = parser.parse(text, { path: line.path, offset: line.offset, readAt })
  } catch (err) {
    // A parser bug must not stop the stream: the line is kept as a dead letter with the reason.
    return dead('AUD_ERR_INGEST_PARSE', `parser failed: ${(err as Error).message}`)
  }
  if (result.kind === 'skip') return { skip: true }
  if (result.kind === 'error') return dead('AUD_ERR_INGEST_PARSE', result.reason)
  try {
    const event = finalizeEvent(result.event, { ...pos, fileKey: line.fileKey, generation: line.generation, offset: line.offset, path: line.path }, sequence, parser.dataset, parser.eventClass, readAt)
    return { event }
  } catch (err) {
    if (isAuditError(err)) return dead(err.code, err.message)
    throw err
  }
}

interface Metrics {
  lines: Counter<'source'>
  events: Counter<'source'>
  dead: Counter<'source' | 'code'>
  skipped: Counter<'source'>
  lag: Gauge<'source'>
}

function metricsIn (reg: Registry): Metrics {
  const get = <T>(name: string, make: () => T): T => (reg.getSingleMetric(name) as T | undefined) ?? make()
  return {
    lines: get('auditline_ingest_lines_total', () => new Counter({ name: 'auditline_ingest_lines_total', help: 'Lines read from source files', labelNames: ['source'], registers: [reg] })),
    events: get('auditline_ingest_events_total', () => new Counter({ name: 'auditline_ingest_events_total', help: 'Events produced and acknowledged by Kafka', labelNames: ['source'], registers: [reg] })),
    dead: get('auditline_ingest_deadletters_total', () => new Counter({ name: 'auditline_ingest_deadletters_total', help: 'Lines sent to the dead-letter topic', labelNames: ['source', 'code'], registers: [reg] })),
    skipped: get('auditline_ingest_skipped_total', () => new Counter({ name: 'auditline_ingest_skipped_total', help: 'Lines that carry no audit event (e.g. daemon start-up notices)', labelNames: ['source'], registers: [reg] })),
    lag: get('auditline_ingest_lag_bytes', () => new Gauge({ name: 'auditline_ingest_lag_bytes', help: 'Bytes written to source files and not yet acknowledged', labelNames: ['source'], registers: [reg] }))
  }
}

export interface RunningCollector {
  close (): Promise<void>
  /** Resolves once everything currently in the files has been acknowledged (tests, `--once`). */
  drained (): Promise<void>
}

export async function startFileCollector (opts: FileCollectorOptions, io: CollectorIo): Promise<RunningCollector> {
  const log = io.log.child({ component: `ingest.${opts.source}` })
  const m = metricsIn(io.metrics)
  const store = new CheckpointStore(opts.checkpointDir, opts.source)
  const cp = await store.load()
  const tailer = new Tailer({ paths: opts.paths, maxLineBytes: opts.maxLineBytes, ...(opts.rotatedIdleMs === undefined ? {} : { rotatedIdleMs: opts.rotatedIdleMs }) }, cp)
  let nextSequence = cp.nextSequence
  const stop = new AbortController()
  let idleWaiters: Array<() => void> = []
  const stream = streamId(opts.host, opts.source)

  async function sendUntilAcked (messages: { events: Message[], dead: Message[] }): Promise<boolean> {
    const topicMessages = []
    if (messages.events.length > 0) topicMessages.push({ topic: opts.topic, messages: messages.events })
    if (messages.dead.length > 0) topicMessages.push({ topic: opts.deadletterTopic, messages: messages.dead })
    if (topicMessages.length === 0) return true
    for (let attempt = 0; !stop.signal.aborted; attempt++) {
      try {
        await io.producer.sendBatch({ topicMessages, acks: -1 })
        return true
      } catch (err) {
        const e = new AuditError('AUD_ERR_KAFKA_PRODUCE', [messages.events.length + messages.dead.length, opts.topic, err], { cause: err })
        log.warn({ error_code: e.code, err: e, attempt }, 'Kafka did not acknowledge a batch; reading paused, retrying.')
        await sleep(backoff(attempt, 250, 15_000), stop.signal)
      }
    }
    return false
  }

  async function loop (): Promise<void> {
    while (!stop.signal.aborted) {
      await tailer.refresh()
      const lines = await tailer.read(opts.batchLines, opts.batchBytes)
      if (lines.length === 0) {
        m.lag.set({ source: opts.source }, await tailer.lagBytes())
        for (const w of idleWaiters) w()
        idleWaiters = []
        await sleep(opts.pollMs, stop.signal)
        continue
      }
      const readAt = new Date()
      const events: Message[] = []
      const dead: Message[] = []
      let seq = nextSequence
      for (const line of lines) {
        const out = processLine(line, opts.parser, { host: opts.host, source: opts.source }, seq, readAt)
        if ('skip' in out) continue
        seq++
        if ('event' in out) {
          events.push({ key: stream, value: JSON.stringify(out.event), headers: { 'auditline-schema': '1' } })
        } else {
          dead.push({ key: stream, value: JSON.stringify(out.dead) })
          m.dead.inc({ source: opts.source, code: out.dead.code })
        }
      }
      if (!await sendUntilAcked({ events, dead })) return // stopping: checkpoint stays where it was
      nextSequence = seq
      await store.save({ version: 1, nextSequence, files: tailer.positions() })
      m.lines.inc({ source: opts.source }, lines.length)
      m.events.inc({ source: opts.source }, events.length)
      m.skipped.inc({ source: opts.source }, lines.length - events.length - dead.length)
    }
  }

  const done = loop().catch(err => {
    log.error({ err, error_code: (err as AuditError).code }, 'Collector stopped on an error.')
    throw err
  })
  log.info({ paths: opts.paths, topic: opts.topic, nextSequence }, 'Collector started.')

  return {
    async close () {
      stop.abort()
      await done.catch(() => {})
      await tailer.close()
      log.info({ nextSequence }, 'Collector stopped.')
    },
    drained () {
      // The next empty read after this call: everything written before it has been acknowledged.
      return Promise.race([new Promise<void>(resolve => { idleWaiters.push(resolve) }), done])
    }
  }
}
