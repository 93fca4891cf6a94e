/**
 * The fastify application: auth on every route but the public ones (health, docs, the UI's static files),
 * typed routes, errors as `{ error, message }`, an OpenAPI document generated from the route schemas.
 */
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger, type FastifyRequest } from 'fastify'
import type { Logger } from '../lib/log.ts'
import { AuditError, isAuditError } from '../lib/errors.ts'
import { registerAuth } from './plugins/auth.ts'
import { eventsRoutes } from './routes/events.ts'
import { countsRoutes } from './routes/counts.ts'
import { statsRoutes } from './routes/stats.ts'
import { exportsRoutes } from './routes/exports.ts'
import type { ExportJobs } from './exports.ts'
import { docsRoutes, registerDocs } from './plugins/docs.ts'
import { securityHeaders, uiRoutes } from './plugins/ui.ts'
import type { EventStore } from './store/types.ts'
import type { QueryApiConfig } from './config.ts'
import type { ApiAuditor } from './audit.ts'

export interface AppDeps {
  store: EventStore
  log: Logger
  /** Records every search and every refused request before the answer goes out. */
  auditor: ApiAuditor
  /** Evidence export jobs; without them the export routes answer AUD_ERR_EXPORT_BUILD. */
  exports?: ExportJobs
  /** TLS certificate and key (PEM contents) when `queryApi.tls` is set: the API then serves HTTPS. */
  https?: { cert: string, key: string }
}

export function buildApp (cfg: QueryApiConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast drops pino's generics so that the instance type stays the default one.
    loggerInstance: deps.log.child({ component: 'query-api' }) as FastifyBaseLogger,
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    ...(deps.https === undefined ? {} : { https: deps.https })
  })

  /** A refused request is recorded too; if that fails, the refusal still goes out (and the failure is logged). */
  async function refused (req: FastifyRequest, status: number, code: string): Promise<void> {
    if (status >= 500 || code === 'AUD_ERR_API_AUDIT') return
    try {
      await deps.auditor.record({ action: 'api_refused', outcome: 'failure', principal: req.principal, route: req.routeOptions.url ?? req.url.split('?')[0] ?? '', query: { error: code }, status, sourceIp: req.ip })
    } catch (err) {
      req.log.error({ err, error_code: 'AUD_ERR_API_AUDIT' }, 'Could not record a refused request.')
    }
  }

  app.setErrorHandler(async (err: FastifyError, req, reply) => {
    if (isAuditError(err)) {
      await refused(req, err.status ?? 500, err.code)
      if (err.status === 503) reply.header('retry-after', '1')
      return await reply.status(err.status ?? 500).send({ error: err.code, message: err.message })
    }
    if (err.validation !== undefined) {
      const v = err.validation[0]
      const param = v === undefined
        ? '(request)'
        : v.keyword === 'additionalProperties'
          ? String((v.params as { additionalProperty?: string }).additionalProperty)
          : (v.instancePath.replace(/^\//, '').replaceAll('/', '.') || String((v.params as { missingProperty?: string }).missingProperty ?? '(request)'))
      const why = v?.keyword === 'additionalProperties' ? 'is not a known parameter' : (v?.message ?? 'is invalid')
      await refused(req, 400, 'AUD_ERR_API_BAD_REQUEST')
      return await reply.status(400).send({ error: 'AUD_ERR_API_BAD_REQUEST', message: `Invalid parameter ${param}: ${why}` })
    }
    if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      await refused(req, err.statusCode, err.code ?? 'AUD_ERR_API_BAD_REQUEST')
      return await reply.status(err.statusCode).send({ error: err.code ?? 'AUD_ERR_API_BAD_REQUEST', message: err.message })
    }
    reply.log.error({ err }, 'Request failed.')
    const internal = new AuditError('AUD_ERR_API_INTERNAL')
    return await reply.status(500).send({ error: internal.code, message: internal.message })
  })

  registerAuth(app, cfg.apiKeys)
  securityHeaders(app)
  registerDocs(app, 'v1')
  // Routes go into a plugin so that they are added after @fastify/swagger has loaded and sees them all.
  app.register(async api => {
    api.get('/healthz', { config: { public: true }, schema: { summary: 'Liveness', tags: ['service'], security: [] } }, async () => ({ status: 'ok' }))
    eventsRoutes(api, deps.store, deps.auditor, cfg)
    countsRoutes(api, deps.store, deps.auditor, cfg)
    statsRoutes(api, deps.store, deps.auditor, cfg)
    exportsRoutes(api, deps.exports, deps.auditor, cfg)
    docsRoutes(api)
    uiRoutes(api)
  })
  return app
}
