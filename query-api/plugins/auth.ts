/**
 * Authentication: every request carries an API key (`Authorization: ApiKey al_<id>.<secret>` or
 * `X-Api-Key`). Keys are stored as scrypt hashes only (lib/apikey.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { keyVerifier, presentedKey } from '../../lib/apikey.ts'
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

export function authenticator (keys: readonly ApiKey[]): (req: FastifyRequest) => Promise<Principal> {
  const verify = keyVerifier(keys)
  return async function authenticate (req) {
    const key = presentedKey(req.headers)
    const stored = key === undefined ? undefined : await verify(key)
    if (stored === undefined) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
    return { keyId: stored.id, owner: stored.owner, roles: stored.roles, ...(stored.tenant === undefined ? {} : { tenant: stored.tenant }) }
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
