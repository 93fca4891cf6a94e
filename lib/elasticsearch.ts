/**
 * Elasticsearch access: client factory, index naming, the index templates (explicit ECS mappings,
 * core types only, so that the integ-test distribution and any full cluster accept them) and the optional
 * ILM policies of a full distribution (`elasticsearch.ilm`, deploy/elasticsearch/).
 */
import { readFileSync } from 'node:fs'
import { Client, errors } from '@elastic/elasticsearch'
import { Type, type Static } from '@sinclair/typebox'
import { statsTemplate } from './stats-template.ts'
import { sealsTemplate } from './seal-template.ts'
import { AuditError } from './errors.ts'
import { sleep } from './component.ts'

/** '' or a policy name: lower case, no spaces, commas or wildcards, not starting with `_`, `-` or `+`. */
const ILM_POLICY_NAME = '^([a-z0-9][a-z0-9_.-]*)?$'

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
  requestTimeoutMs: Type.Integer({ default: 30000, minimum: 100 }),
  /**
   * Index lifecycle management (hot → warm → cold, never delete: retention is auditline's, docs/retention.md).
   * Off by default: the integ-test distribution has no ILM and refuses the `index.lifecycle.*` settings.
   */
  ilm: Type.Object({
    /** Policy the event template names in `index.lifecycle.name`; '' = none. Example: `auditline-events`. */
    eventsPolicy: Type.String({ default: '', pattern: ILM_POLICY_NAME }),
    /** Policy the statistics template names; '' = none. Example: `auditline-stats`. */
    statsPolicy: Type.String({ default: '', pattern: ILM_POLICY_NAME }),
    /**
     * `auditline init` also installs auditline's policies (deploy/elasticsearch/) under the names above, replacing
     * policies of those names; `false` = they are installed by hand or are the cluster's own. Example: `false`.
     */
    install: Type.Boolean({ default: false })
  }, { additionalProperties: false, default: {} })
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

/**
 * Failures of a read that go away by themselves: a shard that has not started yet (a daily index created a
 * moment ago answers 503 "all shards failed" / no_shard_available), a busy node (429), a gateway or a
 * connection that failed.
 */
export function isTransientSearchError (err: unknown): boolean {
  if (err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError) return true
  return err instanceof errors.ResponseError && [429, 502, 503, 504].includes(err.statusCode ?? 0)
}

/** Waits between the tries of a read (about 1.6 s in all: longer than a new index takes to start its shard). */
export const READ_RETRY_MS: readonly number[] = [100, 250, 500, 750]

/**
 * Runs a read (search, point in time, count), trying again after a transient failure (`isTransientSearchError`);
 * the last failure is thrown as it came. Reads that must be complete also ask for `allow_partial_search_results:
 * false`, so that a shard that cannot answer is such a failure rather than a silent gap.
 */
export async function retryTransient<T> (run: () => Promise<T>, waits: readonly number[] = READ_RETRY_MS): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await run()
    } catch (err) {
      const wait = waits[i]
      if (wait === undefined || !isTransientSearchError(err)) throw err
      await sleep(wait)
    }
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

/**
 * The event template. `lifecyclePolicy` (elasticsearch.ilm.eventsPolicy) is named in `index.lifecycle.name` only
 * when set: a cluster without ILM refuses the setting.
 */
export function eventTemplate (prefix: string, replicas = 0, lifecyclePolicy = ''): { name: string, body: Record<string, unknown> } {
  return {
    name: `${prefix}-events`,
    body: {
      index_patterns: [eventIndexPattern(prefix)],
      priority: 100,
      template: {
        settings: {
          number_of_shards: 1,
          number_of_replicas: replicas,
          'index.refresh_interval': '1s',
          ...(lifecyclePolicy === '' ? {} : { 'index.lifecycle.name': lifecyclePolicy })
        },
        mappings: EVENT_MAPPINGS
      },
      _meta: { managed_by: 'auditline', schema: 1 }
    }
  }
}

/**
 * Warm once an index can no longer be written by a replay: Kafka keeps every audit topic 7 days (lib/topics.ts),
 * an index is at most one day older than its newest event, and the warm phase makes it read-only.
 */
const WARM_AFTER = '10d'

/**
 * The lifecycle policies `auditline init` installs with `elasticsearch.ilm.install` (bodies of
 * `PUT _ilm/policy/<name>`; deploy/elasticsearch/ilm-auditline-*.json hold the same, a unit test keeps them equal).
 * No delete phase: auditline's retention deletes expired indices and records each deletion as an audit event,
 * ILM would delete without a record (docs/retention.md). No shrink, downsample or searchable snapshot either: they
 * replace the index by one of another name (`shrink-…`, `restored-…`), which retention, verify and the seal
 * checkpoints (by index name) would no longer find; the templates create one shard anyway. Age counts from
 * the index's creation, so an old day's index re-created by a late event is writable for `WARM_AFTER` again.
 */
export const ILM_POLICIES = {
  events: {
    _meta: {
      managed_by: 'auditline',
      description: 'Daily audit event indices <prefix>-<class>-YYYY.MM.DD: hot while a replay from Kafka (7 days) may still write them, then read-only and merged to one segment, then cold. No delete phase: auditline retention deletes expired indices and records each deletion (docs/retention.md).'
    },
    phases: {
      hot: { min_age: '0ms', actions: { set_priority: { priority: 100 } } },
      warm: { min_age: WARM_AFTER, actions: { set_priority: { priority: 50 }, readonly: {}, forcemerge: { max_num_segments: 1 } } },
      cold: { min_age: '30d', actions: { set_priority: { priority: 0 } } }
    }
  },
  stats: {
    _meta: {
      managed_by: 'auditline',
      description: 'Daily statistics indices <prefix>-stats-YYYY.MM.DD: hot while the statistics stage may re-emit their buckets (replays within 7 days), then read-only and merged to one segment (re-emitted buckets leave deleted documents behind). No delete phase: auditline retention deletes expired indices and records each deletion (docs/retention.md).'
    },
    phases: {
      hot: { min_age: '0ms', actions: { set_priority: { priority: 50 } } },
      warm: { min_age: WARM_AFTER, actions: { set_priority: { priority: 25 }, readonly: {}, forcemerge: { max_num_segments: 1 } } }
    }
  }
} as const

/** What `ensureTemplates` reads of the Elasticsearch config; without `ilm`, no lifecycle policy is named or installed. */
export type TemplateConfig = Pick<ElasticsearchConfig, 'indexPrefix' | 'replicas'> & Partial<Pick<ElasticsearchConfig, 'ilm'>>

/** Installs (or updates) the index templates, after the lifecycle policies when `ilm.install` is set. Idempotent. */
export async function ensureTemplates (client: Client, cfg: TemplateConfig): Promise<string[]> {
  const ilm = cfg.ilm ?? { eventsPolicy: '', statsPolicy: '', install: false }
  // Policies first: an index created from a template that names a missing policy reports an ILM error until it exists.
  if (ilm.install) await installIlmPolicies(client, ilm)
  const t = eventTemplate(cfg.indexPrefix, cfg.replicas, ilm.eventsPolicy)
  await client.indices.putIndexTemplate({ name: t.name, ...t.body })
  const s = statsTemplate(cfg.indexPrefix, cfg.replicas, ilm.statsPolicy)
  await client.indices.putIndexTemplate({ name: s.name, ...s.body })
  const seals = sealsTemplate(cfg.indexPrefix, cfg.replicas)
  await client.indices.putIndexTemplate({ name: seals.name, ...seals.body })
  return [t.name, s.name, seals.name]
}

async function installIlmPolicies (client: Client, ilm: ElasticsearchConfig['ilm']): Promise<void> {
  const wanted = [
    { name: ilm.eventsPolicy, policy: ILM_POLICIES.events },
    { name: ilm.statsPolicy, policy: ILM_POLICIES.stats }
  ].filter(p => p.name !== '')
  if (wanted.length === 0) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', ['elasticsearch.ilm.install is true, but neither elasticsearch.ilm.eventsPolicy nor statsPolicy names a policy'])
  }
  if (ilm.eventsPolicy === ilm.statsPolicy) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', ['elasticsearch.ilm.install: eventsPolicy and statsPolicy name the same policy; the two policies differ, so they need two names'])
  }
  for (const { name, policy } of wanted) {
    try {
      await client.ilm.putLifecycle({ name, policy })
    } catch (err) {
      throw new AuditError('AUD_ERR_CONFIG_INVALID', [`elasticsearch.ilm.install: Elasticsearch refused lifecycle policy ${name} (${(err as Error).message}); a cluster without ILM cannot use elasticsearch.ilm`], { cause: err })
    }
  }
}
