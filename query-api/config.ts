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

/**
 * A statistics site name as the statistics documents carry it (`site`: the vhost, else the collector host),
 * in lower case; `*.example.com` stands for every name ending in `.example.com` (any depth), not for
 * `example.com` itself.
 */
export const SitePatternSchema = Type.String({ maxLength: 253, pattern: '^(\\*\\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$' })

export const TenantSchema = Type.Object({
  /** The tenant (customer) id that `stats` keys name in `tenant`. Example: `cust-4711`. */
  id: Type.String({ minLength: 1, maxLength: 128 }),
  /**
   * The tenant's sites: exact host names, or `*.<domain>` for every subdomain of a domain.
   * Example: `[shop.example.com, www.example.com, '*.example.net']`.
   */
  sites: Type.Array(SitePatternSchema, { minItems: 1, maxItems: 10000 })
}, { additionalProperties: false })

export type Tenant = Static<typeof TenantSchema>

export const StatsLimitsSchema = Type.Object({
  /** Longest range (days) of an hourly series. Example: `31` (744 points). */
  maxHourRangeDays: Type.Integer({ default: 31, minimum: 1, maximum: 366 }),
  /** Longest range (days) of a daily series. Example: `366`. */
  maxDayRangeDays: Type.Integer({ default: 366, minimum: 1, maximum: 3660 })
}, { additionalProperties: false, default: {} })

export const ExportsConfigSchema = Type.Object({
  /**
   * Directory the evidence bundles (`<job id>.tar`) are written to; empty: `<stateDir>/exports`.
   * Bundles hold audit data: keep the directory private (created with mode 0700). Example: `/var/lib/auditline/exports`.
   */
  dir: Type.String({ default: '' }),
  /** Most events one export may hold; a larger match is refused (413) before anything is written. Example: `100000`. */
  maxEvents: Type.Integer({ default: 100_000, minimum: 1, maximum: 5_000_000 }),
  /**
   * PEM file of the seal public key shipped in bundles; unset: derived from `indexer.seal` (same config file).
   * Example: `/etc/auditline/seal-key.pub.pem`.
   */
  publicKeyFile: Type.Optional(Type.String({ minLength: 1 }))
}, { additionalProperties: false, default: {} })

export type ExportsConfig = Static<typeof ExportsConfigSchema>

export const QueryApiConfigSchema = Type.Object({
  /** Address to listen on. Example: `127.0.0.1`. */
  host: Type.String({ default: '127.0.0.1' }),
  /** TCP port; 0 picks a free one. */
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  apiKeys: Type.Array(ApiKeySchema, { default: [] }),
  /** Largest page a search may ask for. */
  maxPageSize: Type.Integer({ default: 500, minimum: 1, maximum: 10000 }),
  /** Longest time range (days) one search may span. */
  maxRangeDays: Type.Integer({ default: 366, minimum: 1 }),
  /**
   * Which statistics sites each tenant owns (a `stats` key sees only its tenant's sites; `admin` sees all).
   * Example: `[{ id: cust-4711, sites: [shop.example.com, '*.example.net'] }]`.
   */
  tenants: Type.Array(TenantSchema, { default: [] }),
  /** Limits of the statistics feed (`/v1/stats/…`). */
  stats: StatsLimitsSchema,
  /** Evidence exports (`/v1/exports`, docs/exports.md). Example: `{ maxEvents: 50000 }`. */
  exports: ExportsConfigSchema,
  /**
   * Serve HTTPS instead of HTTP. The key file stays mode 0600; a restart picks up a renewed certificate.
   * Example: `{ certFile: /etc/auditline/api.pem, keyFile: /etc/auditline/api.key }`.
   */
  tls: Type.Optional(Type.Object({
    /** PEM certificate chain (server certificate first). Example: `/etc/auditline/api.pem`. */
    certFile: Type.String({ minLength: 1 }),
    /** PEM private key of `certFile`. Example: `/etc/auditline/api.key`. */
    keyFile: Type.String({ minLength: 1 })
  }, { additionalProperties: false }))
}, { additionalProperties: false, default: {} })

export type QueryApiConfig = Static<typeof QueryApiConfigSchema>
