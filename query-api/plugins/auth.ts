/**
 * Authentication: every request carries an API key (`Authorization: ApiKey al_<id>.<secret>` or
 * `X-Api-Key`). Keys are stored as scrypt hashes only; a verified key is remembered (by its SHA-256)
 * for a few minutes so that scrypt's cost is paid once per key, not per request.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { parseKey, verifyKey } from '../../lib/apikey.ts'
import { AuditError } from '../../lib/errors.ts'
import type { ApiKey, Role } from '../config.ts'

export interface Principal {
  keyId: string
  owner: string
  roles: readonly Role[]
  tenant?: string
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

const CACHE_MS = 5 * 60_000

export function authenticator (keys: readonly ApiKey[]): (req: FastifyRequest) => Promise<Principal> {
  const byId = new Map(keys.map(k => [k.id, k]))
  const verified = new Map<string, { principal: Principal, until: number }>()
  return async function authenticate (req) {
    const header = req.headers.authorization
    const raw = typeof header === 'string' && header.startsWith('ApiKey ')
      ? header.slice(7).trim()
      : (typeof req.headers['x-api-key'] === 'string' ? req.headers['x-api-key'] : undefined)
    if (raw === undefined) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
    const digest = createHash('sha256').update(raw).digest('hex')
    const hit = verified.get(digest)
    if (hit !== undefined && hit.until > Date.now()) return hit.principal
    const parsed = parseKey(raw)
    const stored = parsed === undefined ? undefined : byId.get(parsed.id)
    if (stored === undefined || !await verifyKey(raw, stored.hash)) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
    const principal: Principal = { keyId: stored.id, owner: stored.owner, roles: stored.roles, ...(stored.tenant === undefined ? {} : { tenant: stored.tenant }) }
    verified.set(digest, { principal, until: Date.now() + CACHE_MS })
    return principal
  }
}

export function registerAuth (app: FastifyInstance, keys: readonly ApiKey[]): void {
  const authenticate = authenticator(keys)
  app.decorateRequest('principal', undefined)
  app.addHook('onRequest', async req => {
    if (req.routeOptions.config.public === true) return
    req.principal = await authenticate(req)
  })
}

export function requireRole (req: FastifyRequest, roles: readonly Role[], what: string): Principal {
  const p = req.principal
  if (p === undefined) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
  if (!p.roles.some(r => roles.includes(r) || r === 'admin')) throw new AuditError('AUD_ERR_API_FORBIDDEN', [p.roles.join(','), what])
  return p
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Route needs no authentication (health checks only). */
    public?: boolean
  }
}
