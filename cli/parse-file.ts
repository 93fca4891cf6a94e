/**
 * `auditline parse`: a file through exactly the collector's line handling (tailer, parser, finalize,
 * dead letters), without Kafka and without a checkpoint.
 */
import { stat } from 'node:fs/promises'
import { emptyCheckpoint } from '../ingest/common/checkpoint.ts'
import { Tailer } from '../ingest/common/tail.ts'
import { processLine, processLineToMessage } from '../ingest/common/collector.ts'
import { handlerFor } from '../ingest/sources.ts'
import type { AuditEvent } from '../lib/ecs.ts'
import type { DeadLetter } from '../lib/deadletter.ts'

export interface ParseSummary { lines: number, events: number, deadLetters: number, skipped: number }

export async function parseFile (file: string, type: string, format: string | undefined, host: string,
  out: { event: (e: AuditEvent | Record<string, unknown>) => void, dead: (d: DeadLetter) => void }, options: Readonly<Record<string, unknown>> = {}, maxLineBytes = 65536): Promise<ParseSummary> {
  await stat(file) // a clear ENOENT before anything else
  const handler = handlerFor(type, format, options)
  // Read once to its end: an unterminated last line is a line too.
  const tailer = new Tailer({ paths: [file], maxLineBytes, emitUnterminated: true }, emptyCheckpoint())
  const summary: ParseSummary = { lines: 0, events: 0, deadLetters: 0, skipped: 0 }
  let seq = 0
  try {
    await tailer.refresh()
    for (;;) {
      const lines = await tailer.read(1000, 8 * 1024 * 1024)
      if (lines.length === 0) break
      const readAt = new Date()
      for (const line of lines) {
        summary.lines++
        const pos = { host, source: type }
        // Sources with their own records (web access) print those records, exactly as they would go to Kafka.
        const r = handler.toMessage !== undefined
          ? processLineToMessage(line, handler.toMessage, handler.restricted, pos, seq, readAt)
          : processLine(line, handler.parser, pos, seq, readAt)
        if ('skip' in r) { summary.skipped++; continue }
        seq++
        if ('dead' in r) { summary.deadLetters++; out.dead(r.dead); continue }
        summary.events++
        out.event('event' in r ? r.event : JSON.parse(r.message.value) as Record<string, unknown>)
      }
    }
  } finally {
    await tailer.close()
  }
  return summary
}
