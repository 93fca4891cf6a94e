/**
 * Every error auditline raises on purpose carries a stable code `AUD_ERR_<STAGE>_<WHAT>`.
 * Codes never change meaning once released; each is documented in docs/errors.md
 * (a unit test keeps the two in step).
 */

interface ErrorSpec {
  /** Human message; `%s` placeholders are filled from the factory arguments in order. */
  readonly message: string
  /** Whether retrying the same operation later can succeed. */
  readonly retriable: boolean
  /** HTTP status when the error reaches an API client. */
  readonly status?: number
}

export const ERROR_SPECS = {
  AUD_ERR_CONFIG_INVALID: { message: 'Invalid configuration: %s', retriable: false },
  AUD_ERR_CONFIG_READ: { message: 'Cannot read configuration file %s: %s', retriable: false },
  AUD_ERR_EVENT_INVALID: { message: 'Event does not match schema v%s: %s', retriable: false },
  AUD_ERR_INGEST_PARSE: { message: 'Cannot parse line: %s', retriable: false },
  AUD_ERR_INGEST_LINE_TOO_LONG: { message: 'Line longer than %s bytes', retriable: false },
  AUD_ERR_INGEST_CHECKPOINT: { message: 'Cannot persist checkpoint %s: %s', retriable: true },
  AUD_ERR_INGEST_SOURCE_UNKNOWN: { message: 'Unknown source %s (known: %s)', retriable: false },
  AUD_ERR_KAFKA_PRODUCE: { message: 'Kafka did not acknowledge %s messages to %s: %s', retriable: true },
  AUD_ERR_KAFKA_CONNECT: { message: 'Cannot connect to Kafka at %s: %s', retriable: true },
  AUD_ERR_INDEX_BULK_REJECTED: { message: 'Elasticsearch rejected document %s: %s', retriable: false },
  AUD_ERR_INDEX_BULK_RETRY: { message: 'Elasticsearch bulk request failed, will retry: %s', retriable: true },
  AUD_ERR_INDEX_HASH_MISMATCH: { message: 'Event %s hash mismatch: expected %s, computed %s', retriable: false },
  AUD_ERR_INDEX_DECODE: { message: 'Cannot decode Kafka message at %s: %s', retriable: false },
  AUD_ERR_INDEX_SEAL_KEY: { message: 'Cannot use the seal key %s: %s', retriable: false },
  AUD_ERR_INDEX_SEAL_NO_KEY: { message: 'No seal key configured (indexer.seal.privateKeyFile): sealing with a throw-away key %s; these seals cannot be verified later', retriable: false },
  AUD_ERR_INDEX_SEAL_WRITE: { message: 'Cannot write seal checkpoint %s: %s', retriable: true },
  AUD_ERR_RETENTION_STATE: { message: 'Cannot read or write the retention checkpoint %s: %s', retriable: true },
  AUD_ERR_RETENTION_BUSY: { message: 'Another retention run holds %s (pid %s)', retriable: true },
  AUD_ERR_RETENTION_DELETE: { message: 'The store did not delete index %s: %s', retriable: true },
  AUD_ERR_ES_CONNECT: { message: 'Cannot reach Elasticsearch at %s: %s', retriable: true },
  AUD_ERR_PANEL_BAD_REQUEST: { message: 'Bad request: %s', retriable: false, status: 400 },
  AUD_ERR_PANEL_TOO_LARGE: { message: '%s', retriable: false, status: 413 },
  AUD_ERR_PANEL_EVENT_INVALID: { message: 'Invalid panel event: %s', retriable: false, status: 422 },
  AUD_ERR_PANEL_TENANT_MISMATCH: { message: 'Client %s may post events of customer %s only, not %s', retriable: false, status: 403 },
  AUD_ERR_PANEL_ID_CONFLICT: { message: 'Event id %s was already accepted with different content', retriable: false, status: 409 },
  AUD_ERR_PANEL_UNAVAILABLE: { message: 'Kafka did not acknowledge %s events; retry with the same ids: %s', retriable: true, status: 503 },
  AUD_ERR_SEQUENCE_STATE: { message: 'Cannot read or write the sequence journal %s: %s', retriable: true, status: 503 },
  AUD_ERR_ANON_EPOCH_OVER: { message: 'Record arrived after its epoch key was destroyed: %s', retriable: false },
  AUD_ERR_STATS_DECODE: { message: 'Cannot read anonymized record at %s: %s', retriable: false },
  AUD_ERR_API_BAD_REQUEST: { message: 'Invalid parameter %s: %s', retriable: false, status: 400 },
  AUD_ERR_API_UNAUTHENTICATED: { message: 'Missing or unknown API key', retriable: false, status: 401 },
  AUD_ERR_API_FORBIDDEN: { message: 'Role %s may not %s', retriable: false, status: 403 },
  AUD_ERR_API_NOT_FOUND: { message: 'No %s %s', retriable: false, status: 404 },
  AUD_ERR_API_AUDIT: { message: 'The request could not be audited, so it is not served: %s', retriable: true, status: 503 },
  AUD_ERR_API_STORE_UNAVAILABLE: { message: 'The event store cannot answer now, retry later: %s', retriable: true, status: 503 },
  AUD_ERR_API_INTERNAL: { message: 'Internal error', retriable: true, status: 500 },
  AUD_ERR_STACK_START: { message: 'Local %s did not start: %s', retriable: false },
  AUD_ERR_EXPORT_BUILD: { message: 'Cannot build the evidence export: %s', retriable: false, status: 422 },
  AUD_ERR_EXPORT_TOO_LARGE: { message: 'The export matches %s events, more than %s (queryApi.exports.maxEvents): narrow the filters', retriable: false, status: 413 },
  AUD_ERR_EXPORT_NOT_READY: { message: 'Export %s is %s: its bundle is not ready', retriable: true, status: 409 },
  AUD_ERR_EXPORT_VERIFY: { message: 'The evidence bundle does not verify: %s', retriable: false },
  AUD_ERR_CLI_USAGE: { message: '%s', retriable: false }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERROR_SPECS

export class AuditError extends Error {
  override name = 'AuditError'
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly status: number | undefined
  /** Bounded, non-secret diagnostic data (never credentials or visitor IPs). */
  readonly meta: Readonly<Record<string, unknown>>

  constructor (code: ErrorCode, args: readonly unknown[] = [], opts: { cause?: unknown, meta?: Record<string, unknown> } = {}) {
    const spec: ErrorSpec = ERROR_SPECS[code]
    super(format(spec.message, args), opts.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.retriable = spec.retriable
    this.status = spec.status
    this.meta = Object.freeze({ ...opts.meta })
  }
}

/** Creates an AuditError: `auditError('AUD_ERR_INGEST_PARSE', ['no timestamp'])`. */
export function auditError (code: ErrorCode, ...args: unknown[]): AuditError {
  return new AuditError(code, args)
}

export function isAuditError (err: unknown, code?: ErrorCode): err is AuditError {
  return err instanceof AuditError && (code === undefined || err.code === code)
}

function format (template: string, args: readonly unknown[]): string {
  let i = 0
  return template.replace(/%s/g, () => {
    const v = args[i++]
    if (v instanceof Error) return v.message
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)
  })
}
