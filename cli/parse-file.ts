/**
 * `auditline parse`: a file through exactly the collector's line handling (tailer, parser, finalize,
 * dead letters), without Kafka and without a checkpoint.
 */
import { stat } from 'node:fs/promises'
import { emptyCheckpoint } from '../ingest/common/checkpoint.ts'
import { Tailer } from '../ingest/common/tail.ts'
import { processLine } from '../ingest/common/collector.ts'
import { parserFor } from '../ingest/sources.ts'
import type { AuditEvent } from '../lib/ecs.ts'
import type { DeadLetter } from '../lib/deadletter.ts'

export interface ParseSummary { lines: number, events: number, deadLetters: number, skipped: number }

export async function parseFile (file: string, type: string, format: string | undefined, host: string,
  out: { event: (e: AuditEvent) => void, dead: (d: DeadLetter) => void }, options: Readonly<Record<string, unknown>> = {}, maxLineBytes = 1048576): Promise<ParseSummary> {
  await stat(file) // a clear ENOENT before anything else
  const { parser } = parserFor(type, format, options)
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
        const r = processLine(line, parser, { host, source: type }, seq, readAt)
        if ('skip' in r) { summary.skipped++; continue }
        seq++
        if ('event' in r) { summary.events++; out.event(r.event) } else { summary.deadLetters++; out.dead(r.dead) }
      }
    }
  } finally {
    await tailer.close()
  }
  return summary
}
