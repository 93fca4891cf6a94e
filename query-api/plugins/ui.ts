/**
 * The web UI: three static files from `query-api/ui/` (HTML, one ES module, CSS; no build step), served
 * publicly — they hold no data; every data call they make carries the user's API key. Plus the security
 * headers of every response: a Content-Security-Policy that allows scripts and styles from this origin only
 * (no inline script or style), and `no-store` on API answers (audit data must not linger in caches).
 */
import { existsSync, readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' }
} as const

/** `query-api/ui/` next to this module's folder; from a `dist/` build, the source tree's (tsc copies no assets). */
function uiDir (): URL {
  const candidates = [new URL('../ui/', import.meta.url), new URL('../../../query-api/ui/', import.meta.url)]
  return candidates.find(u => existsSync(u)) ?? (candidates[0] as URL)
}

/** Security headers on every response (add to the root instance, so that 404s and errors get them too). */
export function securityHeaders (app: FastifyInstance): void {
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('x-frame-options', 'DENY')
    if (req.url.startsWith('/v1/')) reply.header('cache-control', 'no-store')
    return payload
  })
}

export function uiRoutes (app: FastifyInstance): void {
  const dir = uiDir()
  for (const [path, { file, type }] of Object.entries(FILES)) {
    // Read once at start: three small files, and no path from a request ever reaches the file system.
    const body = readFileSync(new URL(file, dir))
    app.get(path, { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      await reply.type(type).header('cache-control', 'no-cache').send(body))
  }
  // Browsers ask for it on their own; answering keeps it from becoming a refused (and audited) request.
  app.get('/favicon.ico', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => await reply.code(204).send())
}
