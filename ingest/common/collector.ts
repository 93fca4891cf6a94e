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
import { sleep } from '../../lib/component.ts'
import { sendUntilAcked } from '../../lib/kafka.ts'
import { AuditError, isAuditError } from '../../lib/errors.ts'
import type { DeadLetter } from '../../lib/deadletter.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import { CheckpointStore } from './checkpoint.ts'
import { Tailer, type TailLine } from './tail.ts'
import type { LineParser } from './parser.ts'
import { finalizeEvent, streamId, type Position } from './finalize.ts'

/** A Kafka message one line became. */
export interface LineMessage { key: string, value: string, headers?: Record<string, string> }

/**
 * A source's own last step from a line (valid UTF-8, not blank) to its Kafka message, used instead of
 * `parser` + finalizeEvent + the stream key by sources whose records are not audit events (web access:
 * its own record schema, keyed by client IP so that one client always lands on one partition).
 * Pure; `error` (or a throw) makes the line a dead letter with that reason.
 */
export type ToMessage = (text: string, pos: Position, sequence: number, readAt: Date) => { message: LineMessage } | { error: string } | { skip: true }

/** How lines become messages: audit events through a parser (the default), or a source's own `toMessage`. */
export type LineHandler =
  | { parser: LineParser, toMessage?: undefined, restricted?: undefined }
  | {
    toMessage: ToMessage
    parser?: undefined
    /** The lines hold restricted data (visitor IPs): dead letters keep reason, position and length, not the line. */
    restricted: boolean
  }

export type FileCollectorOptions = LineHandler & {
  source: string
  host: string
  paths: readonly string[]
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

type LinePos = Omit<Position, 'fileKey' | 'generation' | 'offset' | 'path'>

/** Dead-letter builder for one line; `withOriginal: false` for restricted data (the line stays only in its file). */
function deadLetters (line: TailLine, pos: LinePos, sequence: number, readAt: Date, withOriginal: boolean): (code: string, reason: string) => { dead: DeadLetter } {
  const where = { stream: streamId(pos.host, pos.source), path: line.path, file_key: line.fileKey, generation: line.generation, offset: line.offset }
  return (code, reason) => {
    const utf8 = isUtf8(line.bytes)
    return {
      dead: {
        '@timestamp': readAt.toISOString(),
        stage: 'ingest',
        code,
        reason,
        source: where,
        sequence,
        ...(withOriginal ? { original: line.bytes.toString(utf8 ? 'utf8' : 'base64'), original_encoding: utf8 ? 'utf8' as const : 'base64' as const } : {}),
        original_length: line.length
      }
    }
  }
}

/** Checks every source shares: cut lines and invalid UTF-8 become dead letters, blank lines are skipped. */
function lineText (line: TailLine, dead: (code: string, reason: string) => { dead: DeadLetter }): string | { dead: DeadLetter } | { skip: true } {
  if (line.truncated) return dead('AUD_ERR_INGEST_LINE_TOO_LONG', `line of ${line.length} bytes is longer than the maximum`)
  if (!isUtf8(line.bytes)) return dead('AUD_ERR_INGEST_PARSE', 'line is not valid UTF-8')
  const text = line.bytes.toString('utf8')
  return text.trim() === '' ? { skip: true } : text
}

export function processLine (line: TailLine, parser: LineParser, pos: LinePos, sequence: number, readAt: Date): LineOutcome {
  const dead = deadLetters(line, pos, sequence, readAt, true)
  const text = lineText(line, dead)
  if (typeof text !== 'string') return text
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

/** One line through a source's own `toMessage` (see ToMessage): a message, a dead letter, or nothing. */
export function processLineToMessage (line: TailLine, toMessage: ToMessage, restricted: boolean, pos: LinePos, sequence: number, readAt: Date): { message: LineMessage } | { dead: DeadLetter } | { skip: true } {
  const dead = deadLetters(line, pos, sequence, readAt, !restricted)
  const text = lineText(line, dead)
  if (typeof text !== 'string') return text
  let out
  try {
    out = toMessage(text, { ...pos, fileKey: line.fileKey, generation: line.generation, offset: line.offset, path: line.path }, sequence, readAt)
  } catch (err) {
    return isAuditError(err) ? dead(err.code, err.message) : dead('AUD_ERR_INGEST_PARSE', `parser failed: ${(err as Error).message}`)
  }
  return 'error' in out ? dead('AUD_ERR_INGEST_PARSE', out.error) : out
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

  async function send (messages: { events: Message[], dead: Message[] }): Promise<boolean> {
    const topicMessages = []
    if (messages.events.length > 0) topicMessages.push({ topic: opts.topic, messages: messages.events })
    if (messages.dead.length > 0) topicMessages.push({ topic: opts.deadletterTopic, messages: messages.dead })
    // Chunks stay under the broker's request limit; an acknowledged chunk is not sent again on a retry.
    return await sendUntilAcked(io.producer, topicMessages, {
      signal: stop.signal,
      onRetry: (err, attempt) => {
        const e = new AuditError('AUD_ERR_KAFKA_PRODUCE', [messages.events.length + messages.dead.length, opts.topic, err], { cause: err })
        log.warn({ error_code: e.code, err: e, attempt }, 'Kafka did not acknowledge a batch; reading paused, retrying.')
      }
    })
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
        const pos = { host: opts.host, source: opts.source }
        const out = opts.toMessage === undefined
          ? processLine(line, opts.parser, pos, seq, readAt)
          : processLineToMessage(line, opts.toMessage, opts.restricted, pos, seq, readAt)
        if ('skip' in out) continue
        seq++
        if ('event' in out) {
          events.push({ key: stream, value: JSON.stringify(out.event), headers: { 'auditline-schema': '1' } })
        } else if ('message' in out) {
          events.push(out.message)
        } else {
          dead.push({ key: stream, value: JSON.stringify(out.dead) })
          m.dead.inc({ source: opts.source, code: out.dead.code })
        }
      }
      if (!await send({ events, dead })) return // stopping: checkpoint stays where it was
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
