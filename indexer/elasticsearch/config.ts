/**
 * Indexer configuration (`indexer:` in the config file).
 */
import { Type, type Static } from '@sinclair/typebox'

export const IndexerConfigSchema = Type.Object({
  /** Kafka consumer group; every indexer process of a deployment shares it. */
  groupId: Type.String({ default: 'auditline-indexer', minLength: 1 }),
  /** Topic keys to consume (catalog keys, see docs/topics; `stats` = the statistics documents). Example: `["sshd", "ftp"]`. */
  topics: Type.Array(Type.String(), { default: ['sshd', 'ftp', 'db', 'panel', 'api', 'stats'] }),
  /** Bulk requests of one fetched batch in flight at once (the batch is already in memory). */
  bulkConcurrency: Type.Integer({ default: 3, minimum: 1, maximum: 16 }),
  /** Bytes fetched per partition per request: larger batches make fuller bulk requests. */
  maxBytesPerPartition: Type.Integer({ default: 4_194_304, minimum: 65_536 }),
  /** Documents per bulk request. */
  bulkSize: Type.Integer({ default: 1000, minimum: 1, maximum: 10000 }),
  /** Retries of a 429/5xx item before the consumer pauses (then it keeps retrying with the longest backoff). */
  maxRetryBackoffMs: Type.Integer({ default: 30000, minimum: 100 }),
  /** Partitions processed in parallel by one process. */
  partitionsConcurrently: Type.Integer({ default: 1, minimum: 1, maximum: 64 }),
  /** Read from the earliest offset when the group has no committed offset (a new deployment must not skip events). */
  fromBeginning: Type.Boolean({ default: true }),
  /** Tamper-evident seals over what was indexed (docs/integrity.md). */
  seal: Type.Object({
    /**
     * Sealing period in ms: every `sliceMs` the indexer seals what Elasticsearch acknowledged since the last
     * seal (one checkpoint per index) and only then commits those Kafka offsets. Example: `60000`.
     */
    sliceMs: Type.Integer({ default: 60000, minimum: 100, maximum: 3_600_000 }),
    /** Most leaves in one checkpoint; an index that reaches it is sealed at once. Example: `4096`. */
    maxLeaves: Type.Integer({ default: 4096, minimum: 1, maximum: 65536 }),
    /**
     * Path of the Ed25519 private key (PKCS#8 PEM, from `auditline keygen`). Example: `/etc/auditline/seal-key.pem`.
     * Without a key (neither this nor `privateKey`) the indexer seals with a throw-away key and warns:
     * such seals cannot be verified later (docs/decisions.md).
     */
    privateKeyFile: Type.Optional(Type.String({ minLength: 1 })),
    /** The Ed25519 private key itself (PKCS#8 PEM), preferably from `AUDITLINE_INDEXER__SEAL__PRIVATE_KEY`. */
    privateKey: Type.Optional(Type.String({ minLength: 1 }))
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false, default: {} })

export type IndexerConfig = Static<typeof IndexerConfigSchema>
