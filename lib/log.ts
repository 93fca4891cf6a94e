/**
 * Service logging: pino JSON, one child logger per component (`log.child({ component: 'ingest.sshd' })`).
 * Audit records never travel through here (they go through Kafka). Paths that could carry secrets or
 * visitor IPs are censored, so that a careless `log.info({ event })` cannot leak them.
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

const REDACT_PATHS = [
  'password', '*.password', 'apiKey', '*.apiKey', 'api_key', '*.api_key', 'secret', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'sasl', '*.sasl', 'key', '*.key', 'privateKey', '*.privateKey', 'token', '*.token',
  // Visitor data: never in service logs, wherever a record is attached.
  'event.original', '*.event.original', 'source', '*.source', 'client', '*.client',
  'related', '*.related', 'http.request', '*.http.request', 'url', '*.url', 'line', '*.line',
  'remoteAddress', '*.remoteAddress', 'ip', '*.ip', 'xForwardedFor', '*.xForwardedFor'
]

export interface LogOptions {
  level?: string
  /** Where lines go; stdout when absent. Tests pass a stream to inspect what was logged. */
  destination?: DestinationStream
}

export function createLogger (opts: LogOptions = {}): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: { service: 'auditline' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // fastify's default request serializer logs remoteAddress; ours keeps method, url path and id only.
    serializers: {
      req: (req: { method?: string, routeOptions?: { url?: string }, id?: string }) =>
        ({ method: req.method, route: req.routeOptions?.url, id: req.id }),
      err: pino.stdSerializers.err
    },
    timestamp: pino.stdTimeFunctions.isoTime
  }, opts.destination)
}
