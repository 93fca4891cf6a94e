/**
 * Query API configuration (`queryApi:` in the config file).
 */
import { Type, type Static } from '@sinclair/typebox'

export const ROLES = ['security', 'auditor', 'stats', 'admin'] as const
export type Role = typeof ROLES[number]

export const ApiKeySchema = Type.Object({
  /** Public key id (the part before the dot in `al_<id>.<secret>`). Example: `k1secteam`. */
  id: Type.String({ pattern: '^[a-z0-9]{4,32}$' }),
  /** scrypt hash of the whole key as printed by `auditline apikey create`: `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`. */
  hash: Type.String({ pattern: '^scrypt\\$\\d+\\$\\d+\\$\\d+\\$[A-Za-z0-9+/=]+\\$[A-Za-z0-9+/=]+$' }),
  roles: Type.Array(Type.Union(ROLES.map(r => Type.Literal(r))), { minItems: 1 }),
  /** For the `stats` role: the tenant (customer id) whose sites the key may read. */
  tenant: Type.Optional(Type.String({ minLength: 1 })),
  /** Who holds the key (recorded in the API's own audit events). Example: `secteam-alice`. */
  owner: Type.String({ minLength: 1 })
}, { additionalProperties: false })

export type ApiKey = Static<typeof ApiKeySchema>

export const QueryApiConfigSchema = Type.Object({
  /** Address to listen on. Example: `127.0.0.1`. */
  host: Type.String({ default: '127.0.0.1' }),
  /** TCP port; 0 picks a free one. */
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  apiKeys: Type.Array(ApiKeySchema, { default: [] }),
  /** Largest page a search may ask for. */
  maxPageSize: Type.Integer({ default: 500, minimum: 1, maximum: 10000 }),
  /** Longest time range (days) one search may span. */
  maxRangeDays: Type.Integer({ default: 366, minimum: 1 })
}, { additionalProperties: false, default: {} })

export type QueryApiConfig = Static<typeof QueryApiConfigSchema>
