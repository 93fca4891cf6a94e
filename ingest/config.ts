/**
 * Collector configuration (`ingest:` in the config file).
 */
import { Type, type Static } from '@sinclair/typebox'

export const SOURCE_TYPES = ['sshd', 'vsftpd', 'proftpd', 'pure-ftpd', 'mariadb-audit', 'postgresql', 'web-access'] as const

export const SourceConfigSchema = Type.Object({
  /** Unique name of the source on this host; part of the stream id and of the checkpoint file name. Example: `auth-log`. */
  name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' }),
  /** Parser to use. Example: `sshd`. */
  type: Type.Union(SOURCE_TYPES.map(t => Type.Literal(t))),
  /** Files to follow (each followed across rotation). Example: `["/var/log/auth.log"]`. */
  paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  /** Line format, where a source has several. sshd: `syslog` (default), `journal`, `sshd-e`. vsftpd: `native` (default), `xferlog`. proftpd: `extended` (default), `syslog`, `xferlog`. pure-ftpd: `syslog` (default), `stats`, `xferlog`. mariadb-audit: `file` (default). postgresql: `stderr` (default), `csvlog`, `jsonlog`. web-access: `combined` (default), `vhost_combined`, `custom` (with `options.logFormat`). */
  format: Type.Optional(Type.String({ minLength: 1 })),
  /** Source-specific options, validated by the source's own schema (see the README's configuration reference). */
  options: Type.Optional(Type.Record(Type.String(), Type.Unknown()))
}, { additionalProperties: false })

export type SourceConfig = Static<typeof SourceConfigSchema>

export const IngestConfigSchema = Type.Object({
  /** Directory for durable checkpoints (one JSON file per source). Example: `/var/lib/auditline/checkpoints`. */
  checkpointDir: Type.String({ default: './var/checkpoints', minLength: 1 }),
  /** Name of this collector host in `host.name` and stream ids; the machine's host name when empty. */
  host: Type.String({ default: '' }),
  /**
   * Longer lines go to the dead-letter topic, cut to this many bytes. At most 512 KiB: the dead letter (and the
   * event) must fit in one Kafka message (`message.max.bytes`, 1 MB by default). Example: `65536`.
   */
  maxLineBytes: Type.Integer({ default: 65536, minimum: 1024, maximum: 524288 }),
  /** Lines per Kafka batch (bounds memory together with `batchBytes`). */
  batchLines: Type.Integer({ default: 1000, minimum: 1 }),
  /** Bytes per Kafka batch. */
  batchBytes: Type.Integer({ default: 4194304, minimum: 1024 }),
  /** Milliseconds between looks at a file that had nothing new. */
  pollMs: Type.Integer({ default: 250, minimum: 10 }),
  /** Milliseconds a rotated-away file must stay unchanged before it is closed. */
  rotatedIdleMs: Type.Integer({ default: 2000, minimum: 0 }),
  sources: Type.Array(SourceConfigSchema, { default: [] })
}, { additionalProperties: false, default: {} })

export type IngestConfig = Static<typeof IngestConfigSchema>
