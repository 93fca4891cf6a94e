/**
 * Anonymizer configuration (`anonymizer:` in the config file).
 */
import { Type, type Static } from '@sinclair/typebox'
import { DEFAULT_SCRUB_PARAMS } from './anonymize-ip/text.ts'

export const AnonymizerConfigSchema = Type.Object({
  /** Kafka consumer group of the anonymizer stage. */
  groupId: Type.String({ default: 'auditline-anonymizer', minLength: 1 }),
  /** Length of a key epoch in ms: the same IP maps to the same value within one, to unrelated values across. Default one UTC day. */
  epochMs: Type.Integer({ default: 86_400_000, minimum: 60_000 }),
  /** How long after its end an epoch's key still serves late records before it is destroyed. Example: `900000` (15 min). */
  graceMs: Type.Integer({ default: 900_000, minimum: 0 }),
  /** Query parameter names (case-insensitive) whose values are replaced by `REDACTED`. */
  scrubQueryParams: Type.Array(Type.String({ minLength: 1 }), { default: DEFAULT_SCRUB_PARAMS }),
  /** Largest fetch per partition (bytes): bounds memory together with the batch. */
  maxBytes: Type.Integer({ default: 8_388_608, minimum: 65_536 })
}, { additionalProperties: false, default: {} })

export type AnonymizerConfig = Static<typeof AnonymizerConfigSchema>
