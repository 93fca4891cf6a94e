/**
 * Client authentication for the panel intake: the same key format and storage as the query API
 * (lib/apikey.ts: `al_<id>.<secret>`, scrypt hashes only), but a principal is a panel client.
 */
import type { FastifyRequest } from 'fastify'
import { keyVerifier, presentedKey } from '../../lib/apikey.ts'
import { AuditError } from '../../lib/errors.ts'
import type { PanelClient } from './config.ts'

export function clientAuthenticator (clients: readonly PanelClient[]): (req: FastifyRequest) => Promise<PanelClient> {
  const verify = keyVerifier(clients)
  return async function authenticate (req) {
    const key = presentedKey(req.headers)
    const client = key === undefined ? undefined : await verify(key)
    if (client === undefined) throw new AuditError('AUD_ERR_API_UNAUTHENTICATED')
    return client
  }
}
