/**
 * The topic catalog: every Kafka topic auditline uses, with its partitions and retention.
 * `auditline init` applies it idempotently (creates missing topics, re-applies configs of existing ones).
 * Kafka is the buffer between stages, not the archive: audit topics keep a week so that any stage can be
 * replayed; Elasticsearch holds events for their legal retention period.
 */
const HOUR = 3_600_000
const DAY = 24 * HOUR

export interface TopicSpec {
  /** Stable key used in code. */
  readonly key: TopicKey
  /** Topic name without the deployment's prefix. */
  readonly name: string
  readonly partitions: number
  readonly retentionMs: number
  /** Extra topic configs, e.g. short segments so that a short retention takes effect. */
  readonly configs?: Readonly<Record<string, string>>
  readonly description: string
}

export type TopicKey = 'sshd' | 'ftp' | 'db' | 'panel' | 'api' | 'webRaw' | 'webAnon' | 'stats' | 'deadletter'

export const TOPICS: Readonly<Record<TopicKey, TopicSpec>> = Object.freeze({
  sshd: { key: 'sshd', name: 'audit.sshd.v1', partitions: 3, retentionMs: 7 * DAY, description: 'sshd logins, sessions, sudo' },
  ftp: { key: 'ftp', name: 'audit.ftp.v1', partitions: 3, retentionMs: 7 * DAY, description: 'FTP sessions and file changes' },
  db: { key: 'db', name: 'audit.db.v1', partitions: 3, retentionMs: 7 * DAY, description: 'database connections and DDL/DCL' },
  panel: { key: 'panel', name: 'audit.panel.v1', partitions: 3, retentionMs: 7 * DAY, description: 'control-panel change events' },
  api: { key: 'api', name: 'audit.api.v1', partitions: 1, retentionMs: 7 * DAY, description: "auditline's own audit: searches, exports, refusals, retention deletions" },
  webRaw: {
    key: 'webRaw',
    name: 'web.access.raw.v1',
    partitions: 3,
    // Raw visitor IPs: kept at most an hour. Retention only deletes closed segments, so segments roll every 10 min.
    retentionMs: HOUR,
    configs: { 'segment.ms': String(10 * 60_000) },
    description: 'RESTRICTED raw web access lines (visitor IPs); written by collectors, read only by the anonymizer'
  },
  webAnon: { key: 'webAnon', name: 'web.access.anon.v1', partitions: 3, retentionMs: 7 * DAY, description: 'anonymized web access records' },
  stats: { key: 'stats', name: 'stats.web.v1', partitions: 3, retentionMs: 7 * DAY, description: 'per-site visitor statistics' },
  deadletter: { key: 'deadletter', name: 'audit.deadletter.v1', partitions: 1, retentionMs: 30 * DAY, description: 'unparseable lines and rejected events, with reason and position' }
})

/** Full topic name for a deployment: `<prefix><name>` (the prefix lets tests and tenants share a cluster). */
export function topicName (prefix: string, key: TopicKey): string {
  return prefix + TOPICS[key].name
}

/** The topic an event class is produced to. */
export const CLASS_TOPIC: Readonly<Record<string, TopicKey>> = Object.freeze({
  ssh: 'sshd', ftp: 'ftp', db: 'db', panel: 'panel', api: 'api'
})
