/**
 * Retention configuration (`retention:` in the config file): how many days each event class is kept in
 * Elasticsearch, and how often the indexer process deletes what has expired. Defaults and their reasons:
 * docs/decisions.md ("Retention (#5)"); how deletion works and is recorded: docs/retention.md.
 */
import { Type, type Static } from '@sinclair/typebox'

/**
 * Event class names as they appear in index names `<prefix>-<class>-YYYY.MM.DD`. No `-`: with a dash,
 * `auditline-web-stats-…` of a deployment with prefix `auditline-web` would read as class `web-stats` of
 * prefix `auditline`, and one deployment's retention could delete another's indices.
 */
export const CLASS_NAME_PATTERN = '^[a-z][a-z0-9_]*$'

/** A retention period in whole days: at least one, at most a century. */
const Days = (def: number, doc: string): ReturnType<typeof Type.Integer> =>
  Type.Integer({ default: def, minimum: 1, maximum: 36_500, description: doc })

export const RetentionClassesSchema = Type.Object({
  /** sshd logins, sessions and sudo (connection data with staff source addresses). Example: `90`. */
  ssh: Days(90, 'days sshd events are kept'),
  /** FTP sessions and file changes (connection data with customer source addresses). Example: `90`. */
  ftp: Days(90, 'days FTP events are kept'),
  /** Database connections and DDL/DCL (create, drop, grant). Example: `180`. */
  db: Days(180, 'days database events are kept'),
  /** Control-panel data changes with ticket references (Eingabekontrolle). Example: `365`. */
  panel: Days(365, 'days control-panel change events are kept'),
  /** auditline's own audit: searches, exports and the records of these deletions. Example: `730`. */
  api: Days(730, 'days auditline\'s own audit events are kept'),
  /** Per-site visitor statistics (anonymized counts, no personal data). Example: `400`. */
  stats: Days(400, 'days statistics documents are kept')
}, {
  // Further classes (e.g. a future source) may be given as `name: days`; classes without a period are never deleted.
  patternProperties: { [CLASS_NAME_PATTERN]: Type.Integer({ minimum: 1, maximum: 36_500 }) },
  additionalProperties: false,
  default: {}
})

export const RetentionConfigSchema = Type.Object({
  /**
   * Days each event class is kept, counted from the end of an index's UTC day: the daily index
   * `<prefix>-ssh-2026.01.10` with `ssh: 90` is deleted once `now` ≥ 2026-01-11T00:00Z + 90 days, i.e. when
   * its newest possible event is older than 90 days. Unlisted classes keep their default; indices of
   * classes with no period at all (not one of the six above and not listed) are never deleted.
   * Example: `{ ssh: 30, ftp: 60, db: 180, panel: 365, api: 730, stats: 400 }`.
   */
  classes: RetentionClassesSchema,
  /**
   * Milliseconds between scheduled runs inside `auditline index` and `auditline run` (the first run starts with
   * the process); `0` turns the scheduled run off (then run `auditline retention` from cron). Enable it on one
   * indexer process per deployment: two processes would both record (and one of them find already deleted)
   * each expired index. Example: `3600000` (hourly).
   */
  intervalMs: Type.Integer({ default: 3_600_000, minimum: 0 }),
  /**
   * Directory of the retention stream's sequence checkpoint and lock (`<host>.retention.json`). It keeps the
   * sequence numbers of the deletion records gap-free across runs and crashes: back it up with the host.
   * Empty: `<stateDir>/retention`. Example: `/var/lib/auditline/retention`.
   */
  stateDir: Type.String({ default: '' }),
  /**
   * Host name in `host.name` and in the stream id `<host>/retention` of the deletion records. Empty: `ingest.host`,
   * else the machine's host name. One stream per host and state directory. Example: `indexer-1`.
   */
  host: Type.String({ default: '' })
}, { additionalProperties: false, default: {} })

export type RetentionConfig = Static<typeof RetentionConfigSchema>

/** Class → days, including classes given beyond the six known ones. */
export function periodsOf (cfg: RetentionConfig): Readonly<Record<string, number>> {
  return cfg.classes as Readonly<Record<string, number>>
}
