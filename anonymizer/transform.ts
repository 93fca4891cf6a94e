/**
 * Raw web access record → anonymized record. Pure given the epoch mapper. Every string field that is kept
 * goes through `anonymizeText` (the same function `auditline anonymize` applies to whole lines); the client
 * address is mapped; the raw line and the remote user are dropped.
 */
import { isIP } from 'node:net'
import type { WebAccessRecord } from '../ingest/web-access/record.ts'
import { anonymizeText, type ScrubOptions } from './anonymize-ip/text.ts'
import type { EpochMapper } from './anonymize-ip/mapper.ts'
import { parseUserAgent, type UserAgentInfo } from './user-agent.ts'
import { ANON_SCHEMA_VERSION, type AnonymizedAccess } from './record.ts'

export interface TransformCaches {
  /** Per-epoch cache of user-agent classification (dropped with the epoch key). */
  userAgents: Map<string, UserAgentInfo>
}

export function anonymizeRecord (raw: WebAccessRecord, mapper: EpochMapper, scrub: ScrubOptions, caches: TransformCaches): AnonymizedAccess {
  const t = (s: string | undefined): string | undefined => s === undefined ? undefined : anonymizeText(s, mapper, scrub)
  const site = raw.url?.domain ?? raw.host.name
  const clientKey = raw.source.ip ?? raw.source.address
  const sourceAddress = t(raw.source.address) as string
  const out: AnonymizedAccess = {
    '@timestamp': raw['@timestamp'],
    ecs: raw.ecs,
    event: {
      id: raw.event.id,
      sequence: raw.event.sequence,
      kind: 'event',
      category: ['web'],
      type: ['access'],
      dataset: 'web.access',
      ...(raw.event.outcome === undefined ? {} : { outcome: raw.event.outcome }),
      ...(raw.event.duration === undefined ? {} : { duration: raw.event.duration })
    },
    auditline: { schema: ANON_SCHEMA_VERSION, stream: raw.auditline.stream, class: 'web', format: raw.auditline.format, epoch: mapper.epoch },
    host: { name: raw.host.name },
    source: { address: sourceAddress, ...(isIP(sourceAddress) === 0 ? {} : { ip: sourceAddress }) },
    web: {
      site: t(site) as string,
      visitor_id: mapper.digest(clientKey, raw.user_agent?.original ?? '', site).subarray(0, 16).toString('hex'),
      bot: false
    }
  }
  if (raw.url !== undefined) {
    const u = raw.url
    out.url = compact({ original: t(u.original), path: t(u.path), query: t(u.query), domain: t(u.domain), port: u.port, scheme: u.scheme })
  }
  if (raw.http !== undefined) {
    const { request: rq, response: rs, version } = raw.http
    out.http = compact({
      version,
      request: rq === undefined ? undefined : compact({ method: rq.method, referrer: t(rq.referrer), x_forwarded_for: t(rq.x_forwarded_for), bytes: rq.bytes }),
      response: rs
    })
  }
  const ua = raw.user_agent?.original
  if (ua !== undefined) {
    let info = caches.userAgents.get(ua)
    if (info === undefined) {
      info = parseUserAgent(ua)
      if (caches.userAgents.size > 100_000) caches.userAgents.clear()
      caches.userAgents.set(ua, info)
    }
    out.user_agent = { original: t(ua) as string, name: info.name, ...(info.version === undefined ? {} : { version: info.version }), os: { name: info.os }, device: { type: info.device } }
    out.web.bot = info.device === 'bot'
  }
  return out
}

/**
 * Drops undefined members (the schema is strict and JSON would drop them anyway). Copies rather than `delete`s:
 * a deleted property turns the object into a slow dictionary for the JSON encoding that follows.
 */
function compact<T extends Record<string, unknown>> (o: T): T {
  const out: Record<string, unknown> = {}
  for (const k in o) if (o[k] !== undefined) out[k] = o[k]
  return out as T
}
