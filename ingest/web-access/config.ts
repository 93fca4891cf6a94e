/**
 * Options of a `web-access` source (`ingest.sources[].options`). Validated without I/O.
 */
import { AuditError } from '../../lib/errors.ts'
import { compileLogFormat } from './log-format.ts'

export interface WebAccessOptions {
  /**
   * The nginx `log_format` string of the log, for format `custom` (required there, refused elsewhere): the
   * format as one string, with the quotes nginx writes around free-text fields, and `escape=default`.
   * Must contain `$remote_addr` (the partition key) and one of `$time_local`, `$time_iso8601`, `$msec`.
   * Example: `'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $host'`.
   */
  logFormat?: string
  /**
   * The site the log belongs to, for `url.domain` when the format carries no vhost (`$host`, `$server_name`,
   * apache `%v`): one log file per site is the common layout. Example: `www.example.com`.
   */
  vhost?: string
}

const KEYS = new Set(['logFormat', 'vhost'])

function invalid (what: string): AuditError {
  return new AuditError('AUD_ERR_CONFIG_INVALID', [`ingest.sources[].options.${what}`])
}

export function validateWebAccessOptions (format: string, raw: Readonly<Record<string, unknown>>): WebAccessOptions {
  for (const k of Object.keys(raw)) if (!KEYS.has(k)) throw invalid(`${k}: unknown option of source type web-access (known: logFormat, vhost)`)
  const { logFormat, vhost } = raw
  if (vhost !== undefined && (typeof vhost !== 'string' || !/^[A-Za-z0-9._:[\]-]{1,253}$/.test(vhost))) throw invalid('vhost: must be a host name, e.g. www.example.com')
  if (format !== 'custom') {
    if (logFormat !== undefined) throw invalid(`logFormat: only for format custom (this source has format ${format})`)
    return vhost === undefined ? {} : { vhost: vhost as string }
  }
  if (typeof logFormat !== 'string' || logFormat.trim() === '' || logFormat.length > 4096) throw invalid('logFormat: format custom needs the nginx log_format string (at most 4096 characters)')
  let vars: ReadonlySet<string>
  try {
    vars = compileLogFormat(logFormat).variables
  } catch (err) {
    throw invalid(`logFormat: ${(err as Error).message}`)
  }
  if (!vars.has('remote_addr')) throw invalid('logFormat: needs $remote_addr (records are keyed by the client address)')
  if (!vars.has('time_local') && !vars.has('time_iso8601') && !vars.has('msec')) throw invalid('logFormat: needs $time_local, $time_iso8601 or $msec')
  return { logFormat, ...(vhost === undefined ? {} : { vhost: vhost as string }) }
}
