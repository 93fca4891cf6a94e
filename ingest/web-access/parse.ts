/**
 * nginx/apache access-log lines → raw web access records (record.ts) and their Kafka messages, keyed by
 * the client address so that one client always lands on one partition of `web.access.raw.v1` (the
 * anonymizer relies on that). Pure.
 *
 * Not an audit event: no finalizeEvent, no event hash; dead letters of this source carry no line (the
 * collector is told the data is restricted), and no error reason ever quotes the line.
 */
import { isIP } from 'node:net'
import { ECS_VERSION, eventId } from '../../lib/ecs.ts'
import { streamId, type Position } from '../common/finalize.ts'
import type { ToMessage } from '../common/collector.ts'
import { compileLogFormat, matchLine, unescape, NAMED_FORMATS, type CompiledFormat, type Variable } from './log-format.ts'
import { assertWebAccessRecord, WEB_ACCESS_SCHEMA_VERSION, type WebAccessRecord } from './record.ts'
import { validateWebAccessOptions, type WebAccessOptions } from './config.ts'

export const WEB_ACCESS_FORMATS = ['combined', 'vhost_combined', 'custom'] as const
export type WebAccessFormat = typeof WEB_ACCESS_FORMATS[number]

/** What depends only on the line: the record without id, sequence, stream and position. */
export type WebAccessDraft = Omit<WebAccessRecord, 'event' | 'auditline' | 'log' | 'host' | 'ecs'> & {
  event: Omit<WebAccessRecord['event'], 'id' | 'sequence'>
}

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 }

/** `29/Nov/2026:07:16:21 +0100` → UTC ISO, without Date's string parser. */
function timeLocal (s: string): string | undefined {
  const month = MONTHS[s.slice(3, 6)]
  if (month === undefined) return undefined
  const sign = s[21] === '-' ? -1 : 1
  const offsetMin = sign * (Number(s.slice(22, 24)) * 60 + Number(s.slice(24, 26)))
  const ms = Date.UTC(Number(s.slice(7, 11)), month, Number(s.slice(0, 2)), Number(s.slice(12, 14)), Number(s.slice(15, 17)), Number(s.slice(18, 20))) - offsetMin * 60_000
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
}

function timestamp (v: Partial<Record<Variable, string>>): string | undefined {
  if (v.time_local !== undefined) return timeLocal(v.time_local)
  const d = v.time_iso8601 !== undefined ? new Date(v.time_iso8601) : v.msec !== undefined ? new Date(Number(v.msec) * 1000) : undefined
  return d === undefined || Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

/** A logged text value: `-` and empty mean "none"; escapes undone. */
function text (s: string | undefined): string | undefined {
  return s === undefined || s === '-' || s === '' ? undefined : unescape(s)
}

function int (s: string | undefined): number | undefined {
  return s === undefined || s === '-' || s === '' ? undefined : Number(s)
}

const REQUEST = /^([A-Za-z][A-Za-z0-9_-]*) (\S+)(?: HTTP\/(\d+(?:\.\d+)?))?$/
const ABSOLUTE = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*([^?#]*)(?:\?([^#]*))?/

/** Path and query of a request target (`/p?q`, absolute-form `http://h/p?q`; `*` and `host:port` have none). */
function splitTarget (target: string): { path?: string, query?: string } {
  const abs = ABSOLUTE.exec(target)
  if (abs !== null) return { ...(abs[1] === '' ? {} : { path: abs[1] }), ...(abs[2] === undefined || abs[2] === '' ? {} : { query: abs[2] }) }
  if (!target.startsWith('/')) return target === '*' ? { path: '*' } : {}
  const q = target.indexOf('?')
  if (q < 0) return { path: target }
  return { path: target.slice(0, q), ...(q === target.length - 1 ? {} : { query: target.slice(q + 1) }) }
}

function compact<T extends object> (o: T): T | undefined {
  for (const k in o) if ((o as Record<string, unknown>)[k] !== undefined) return o
  return undefined
}

/** One line against a compiled format: the record draft, or why not (never quoting the line). */
export function parseAccessLine (f: CompiledFormat, line: string, vhost?: string): { draft: WebAccessDraft } | { error: string } {
  const v = matchLine(f, line)
  if (v === undefined) return { error: 'line does not have the shape of the configured log format' }
  const address = text(v.remote_addr)
  if (address === undefined) return { error: 'no client address in the line' }
  const ts = timestamp(v)
  if (ts === undefined) return { error: 'no valid time in the line' }

  const request = text(v.request)
  const rm = request === undefined ? null : REQUEST.exec(request)
  const method = text(v.request_method) ?? rm?.[1]
  // Not HTTP (e.g. a TLS handshake on a plain port): keep the request as logged, escapes and all, readable.
  const target = text(v.request_uri) ?? rm?.[2] ?? (v.request === undefined || v.request === '-' ? undefined : v.request)
  const { path, query } = target === undefined ? {} : splitTarget(target)
  const protocol = text(v.server_protocol)
  const version = protocol?.startsWith('HTTP/') === true ? protocol.slice(5) : rm?.[3]
  const status = int(v.status)
  const duration = v.request_time === undefined || v.request_time === '-' ? undefined : Math.round(Number(v.request_time) * 1e9)
  const domain = text(v.host) ?? text(v.http_host) ?? text(v.server_name) ?? vhost
  const remoteUser = text(v.remote_user)
  const ua = text(v.http_user_agent)
  const port = int(v.remote_port)
  const body = int(v.body_bytes_sent)

  const draft: WebAccessDraft = {
    '@timestamp': ts,
    event: {
      kind: 'event',
      category: ['web'],
      type: ['access'],
      dataset: 'web.access',
      ...(status === undefined ? {} : { outcome: status >= 400 ? 'failure' : 'success' }),
      ...(duration === undefined ? {} : { duration }),
      original: line
    },
    source: { address, ...(isIP(address) === 0 ? {} : { ip: address }), ...(port === undefined ? {} : { port }) }
  }
  if (remoteUser !== undefined) draft.user = { name: remoteUser }
  const url = compact({
    original: target,
    path: text(v.uri) ?? path,
    query: text(v.args) ?? text(v.query_string) ?? query,
    domain: domain?.startsWith('[') === true && domain.endsWith(']') ? domain.slice(1, -1) : domain,
    port: int(v.server_port),
    scheme: text(v.scheme)
  })
  if (url !== undefined) draft.url = url
  const req = compact({ method, referrer: text(v.http_referer), x_forwarded_for: text(v.http_x_forwarded_for), bytes: int(v.request_length) })
  const res = compact({ status_code: status, bytes: int(v.bytes_sent), body: body === undefined ? undefined : { bytes: body } })
  const http = compact({ version, request: req, response: res })
  if (http !== undefined) draft.http = http
  if (ua !== undefined) draft.user_agent = { original: ua }
  return { draft }
}

/** Completes a draft with what depends on the stream and position. */
export function toRecord (draft: WebAccessDraft, pos: Position, sequence: number, format: string): WebAccessRecord {
  const { event, ...rest } = draft
  return {
    ...rest,
    ecs: { version: ECS_VERSION },
    event: { ...event, id: eventId(pos.host, pos.source, pos.fileKey, pos.generation, pos.offset), sequence },
    auditline: { schema: WEB_ACCESS_SCHEMA_VERSION, stream: streamId(pos.host, pos.source), class: 'web', format },
    log: { file: { path: pos.path }, offset: pos.offset },
    host: { name: pos.host }
  }
}

/**
 * The partition key: the client address, so that all lines of one client land on one partition. An
 * IPv4-mapped IPv6 address is keyed as its IPv4 form (the same client), letters lower-cased.
 */
export function partitionKey (address: string): string {
  const a = address.toLowerCase()
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a
}

/** Validates format and options (AUD_ERR_CONFIG_INVALID) and compiles the format once. */
export function compileWebAccess (format: string | undefined, options: Readonly<Record<string, unknown>>): { format: WebAccessFormat, compiled: CompiledFormat, options: WebAccessOptions } {
  const fmt = (format ?? 'combined') as WebAccessFormat
  const opts = validateWebAccessOptions(fmt, options)
  const compiled = compileLogFormat(fmt === 'custom' ? opts.logFormat as string : NAMED_FORMATS[fmt])
  return { format: fmt, compiled, options: opts }
}

/** The collector's last step for this source (see ToMessage in ingest/common/collector.ts). */
export function createWebAccessToMessage (format: string | undefined, options: Readonly<Record<string, unknown>>): ToMessage {
  const c = compileWebAccess(format, options)
  return (line, pos, sequence) => {
    const r = parseAccessLine(c.compiled, line, c.options.vhost)
    if ('error' in r) return r
    const record = toRecord(r.draft, pos, sequence, c.format)
    assertWebAccessRecord(record)
    return { message: { key: partitionKey(record.source.address), value: JSON.stringify(record), headers: { 'auditline-schema': String(WEB_ACCESS_SCHEMA_VERSION), 'auditline-record': 'web-access' } } }
  }
}
