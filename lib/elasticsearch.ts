/**
 * Elasticsearch access: client factory, index naming and the index templates (explicit ECS mappings,
 * core types only, so that the integ-test distribution and any full cluster accept them).
 */
import { readFileSync } from 'node:fs'
import { Client } from '@elastic/elasticsearch'
import { Type, type Static } from '@sinclair/typebox'
import { statsTemplate } from './stats-template.ts'
import { sealsTemplate } from './seal-template.ts'
import { AuditError } from './errors.ts'

export const ElasticsearchConfigSchema = Type.Object({
  /** Node URL(s), e.g. `http://127.0.0.1:9200`. Empty means "no Elasticsearch configured". */
  url: Type.String({ default: '' }),
  /** API key (base64 `id:key`), preferably from `AUDITLINE_ELASTICSEARCH__API_KEY`. */
  apiKey: Type.Optional(Type.String({ minLength: 1 })),
  /** File whose content (trailing newline removed) is the API key, instead of `apiKey`. Example: `/run/secrets/es-api-key`. */
  apiKeyFile: Type.Optional(Type.String({ minLength: 1 })),
  /** PEM file with the CA certificate(s) of an `https://` cluster; absent = the system CAs. Example: `/etc/auditline/es-ca.pem`. */
  caFile: Type.Optional(Type.String({ minLength: 1 })),
  /** Check the cluster's certificate and host name (`https://` only). Only a test may set `false`. Example: `true`. */
  rejectUnauthorized: Type.Boolean({ default: true }),
  /** Prefix of every index and template name. Example: `auditline`. */
  indexPrefix: Type.String({ default: 'auditline', pattern: '^[a-z0-9][a-z0-9_.-]*$' }),
  /** Replicas per index created from auditline's templates (1 or more on a real cluster). */
  replicas: Type.Integer({ default: 0, minimum: 0 }),
  /** Milliseconds before a request is abandoned and retried. */
  requestTimeoutMs: Type.Integer({ default: 30000, minimum: 100 })
}, { additionalProperties: false, default: {} })

export type ElasticsearchConfig = Static<typeof ElasticsearchConfigSchema>

export function createEsClient (cfg: ElasticsearchConfig): Client {
  if (cfg.apiKey !== undefined && cfg.apiKeyFile !== undefined) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', ['elasticsearch: set apiKey (AUDITLINE_ELASTICSEARCH__API_KEY) or apiKeyFile, not both'])
  }
  const apiKey = cfg.apiKeyFile === undefined ? cfg.apiKey : readEsFile('elasticsearch.apiKeyFile', cfg.apiKeyFile).trim()
  return new Client({
    node: cfg.url,
    requestTimeout: cfg.requestTimeoutMs,
    maxRetries: 0, // our own code decides what is retried (429/5xx items only)
    ...(apiKey === undefined ? {} : { auth: { apiKey } }),
    tls: {
      rejectUnauthorized: cfg.rejectUnauthorized,
      ...(cfg.caFile === undefined ? {} : { ca: readEsFile('elasticsearch.caFile', cfg.caFile) })
    }
  })
}

/** Reads a file named in the configuration; the error names field and path, never the content. */
function readEsFile (field: string, file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`])
  }
}

/** Daily index of an event class: `<prefix>-<class>-YYYY.MM.DD` (UTC day of `@timestamp`). */
export function indexName (prefix: string, eventClass: string, timestamp: string): string {
  const d = new Date(timestamp)
  const day = Number.isNaN(d.getTime()) ? new Date() : d
  const y = day.getUTCFullYear()
  const m = String(day.getUTCMonth() + 1).padStart(2, '0')
  const dd = String(day.getUTCDate()).padStart(2, '0')
  return `${prefix}-${eventClass}-${y}.${m}.${dd}`
}

/** Pattern that matches every event index of the deployment (not the seals index). */
export function eventIndexPattern (prefix: string): string {
  return `${prefix}-*`
}

const kw = { type: 'keyword', ignore_above: 1024 } as const
const ip = { type: 'ip' } as const
const date = { type: 'date' } as const
const long = { type: 'long' } as const
const obj = (properties: Record<string, unknown>) => ({ properties })

/** Explicit mapping of the event schema. `dynamic: false` keeps unknown fields in `_source` without mapping them. */
export const EVENT_MAPPINGS = {
  dynamic: false,
  properties: {
    '@timestamp': date,
    ecs: obj({ version: kw }),
    event: obj({
      id: kw,
      kind: kw,
      category: kw,
      type: kw,
      action: kw,
      outcome: kw,
      dataset: kw,
      module: kw,
      provider: kw,
      sequence: long,
      created: date,
      ingested: date,
      hash: kw,
      reason: { type: 'text' }
    }),
    auditline: obj({ schema: long, stream: kw, class: kw, flags: kw }),
    log: obj({ file: obj({ path: kw }), offset: long, syslog: obj({ appname: kw, hostname: kw, procid: kw }) }),
    host: obj({ name: kw, hostname: kw }),
    user: obj({ name: kw, id: kw, target: obj({ name: kw }), effective: obj({ name: kw }) }),
    source: obj({ ip, port: long, address: kw, domain: kw }),
    destination: obj({ ip, port: long, address: kw }),
    process: obj({ name: kw, pid: long, command_line: kw }),
    file: obj({ path: kw, target_path: kw, size: long, type: kw }),
    service: obj({ type: kw, name: kw }),
    related: obj({ ip, user: kw, hosts: kw }),
    // invalid_user is a JSON boolean; a keyword field stores it as "true" (queries `ssh.invalid_user:true` work).
    ssh: obj({ method: kw, key_type: kw, fingerprint: kw, session_id: kw, invalid_user: kw, disconnect_code: long, disconnect_reason: kw, tty: kw, cwd: kw, sudo_error: kw }),
    // rename_ambiguous is a JSON boolean stored as keyword, like ssh.invalid_user.
    ftp: obj({ server: kw, session_id: kw, command: kw, transfer_mode: kw, direction: kw, bytes: long, access_mode: kw, response_code: long, duration_s: long, transfer_status: kw, mode: kw, protocol: kw, rename_ambiguous: kw }),
    db: obj({ system: kw, name: kw, statement: { type: 'text' }, operation: kw, object: kw, object_type: kw, privileges: kw, connection_id: kw, error_code: kw }),
    api: obj({ route: kw, query: { type: 'text' }, results: long, status: long, case_id: kw, roles: kw, key_id: kw, request_id: kw }),
    retention: obj({ index: kw, index_uuid: kw, class: kw, period_days: long, policy: kw, index_day: date, expired_at: date, documents: long, result: kw, intent_id: kw }),
    panel: obj({ actor_kind: kw, actor_id: kw, customer: kw, object_type: kw, object_id: kw, changed_fields: kw, ticket_id: kw, client: kw, change_id: kw, action: kw }),
    tags: kw,
    labels: { type: 'object', dynamic: false }
  }
} as const

export function eventTemplate (prefix: string, replicas = 0): { name: string, body: Record<string, unknown> } {
  return {
    name: `${prefix}-events`,
    body: {
      index_patterns: [eventIndexPattern(prefix)],
      priority: 100,
      template: {
        settings: { number_of_shards: 1, number_of_replicas: replicas, 'index.refresh_interval': '1s' },
        mappings: EVENT_MAPPINGS
      },
      _meta: { managed_by: 'auditline', schema: 1 }
    }
  }
}

/** Installs (or updates) the index templates. Idempotent. */
export async function ensureTemplates (client: Client, cfg: Pick<ElasticsearchConfig, 'indexPrefix' | 'replicas'>): Promise<string[]> {
  const t = eventTemplate(cfg.indexPrefix, cfg.replicas)
  await client.indices.putIndexTemplate({ name: t.name, ...t.body })
  const s = statsTemplate(cfg.indexPrefix, cfg.replicas)
  await client.indices.putIndexTemplate({ name: s.name, ...s.body })
  const seals = sealsTemplate(cfg.indexPrefix, cfg.replicas)
  await client.indices.putIndexTemplate({ name: seals.name, ...seals.body })
  return [t.name, s.name, seals.name]
}
