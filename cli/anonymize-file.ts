/**
 * `auditline anonymize [FILE|-]`: an anonymized copy of a web access log in its own format, for handing logs
 * to customers or third parties. Every line goes through `anonymizeText`, the transform the stream stage
 * applies to each kept field, under one epoch key drawn for this run and destroyed at its end.
 */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { Anonymizer } from '../anonymizer/run.ts'
import { anonymizeText } from '../anonymizer/anonymize-ip/text.ts'
import type { AnonymizerConfig } from '../anonymizer/config.ts'

export async function anonymizeStream (input: Readable, output: Writable, cfg: Pick<AnonymizerConfig, 'epochMs' | 'graceMs' | 'scrubQueryParams'>): Promise<number> {
  const anon = new Anonymizer(cfg)
  const now = Date.now()
  const m = anon.mapperFor(now, now)
  if (m === undefined) throw new Error('no epoch key for the current time')
  let lines = 0
  let buf: string[] = []
  const flush = async (): Promise<void> => {
    if (buf.length === 0) return
    const chunk = buf.join('\n') + '\n'
    buf = []
    if (!output.write(chunk)) await new Promise<void>(resolve => output.once('drain', () => resolve()))
  }
  try {
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      buf.push(anonymizeText(line, m.mapper, anon.scrub))
      if (++lines % 2048 === 0) await flush()
    }
    await flush()
  } finally {
    anon.destroy()
  }
  return lines
}

export function openInput (file: string): Readable {
  return file === '-' ? process.stdin : createReadStream(file)
}
