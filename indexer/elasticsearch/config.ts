/**
 * Indexer configuration (`indexer:` in the config file).
 */
import { Type, type Static } from '@sinclair/typebox'

export const IndexerConfigSchema = Type.Object({
  /** Kafka consumer group; every indexer process of a deployment shares it. */
  groupId: Type.String({ default: 'auditline-indexer', minLength: 1 }),
  /** Topic keys to consume (catalog keys, see docs/topics; `stats` = the statistics documents). Example: `["sshd", "ftp"]`. */
  topics: Type.Array(Type.String(), { default: ['sshd', 'ftp', 'db', 'panel', 'api', 'stats'] }),
  /** Documents per bulk request. */
  bulkSize: Type.Integer({ default: 1000, minimum: 1, maximum: 10000 }),
  /** Retries of a 429/5xx item before the consumer pauses (then it keeps retrying with the longest backoff). */
  maxRetryBackoffMs: Type.Integer({ default: 30000, minimum: 100 }),
  /** Partitions processed in parallel by one process. */
  partitionsConcurrently: Type.Integer({ default: 1, minimum: 1, maximum: 64 }),
  /** Read from the earliest offset when the group has no committed offset (a new deployment must not skip events). */
  fromBeginning: Type.Boolean({ default: true })
}, { additionalProperties: false, default: {} })

export type IndexerConfig = Static<typeof IndexerConfigSchema>
