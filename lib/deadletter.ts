/**
 * Dead letters: what a stage could not turn into an indexed event, with the reason and where it came
 * from, so that nothing is dropped silently. Written to `audit.deadletter.v1`.
 */
export interface DeadLetter {
  '@timestamp': string
  /** Stage that gave up: `ingest`, `anonymize`, `index`. */
  stage: string
  /** Stable error code (docs/errors.md). */
  code: string
  reason: string
  source: {
    stream?: string
    path?: string
    file_key?: string
    generation?: number
    offset?: number
    topic?: string
    partition?: number
    kafka_offset?: string
  }
  /** Sequence number the line took in its stream, so that the gap it leaves is explained. */
  sequence?: number
  /** The raw input as UTF-8 text, or base64 when it is not valid UTF-8 (`original_encoding`). */
  original?: string
  original_encoding?: 'utf8' | 'base64'
  /** Bytes of the raw input (it may have been cut to the configured maximum). */
  original_length?: number
}
