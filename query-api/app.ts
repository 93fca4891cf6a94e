/**
 * The fastify application: auth on every route but health, typed routes, errors as `{ error, message }`.
 */
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger } from 'fastify'
import type { Logger } from '../lib/log.ts'
import { AuditError, isAuditError } from '../lib/errors.ts'
import { registerAuth } from './plugins/auth.ts'
import { eventsRoutes } from './routes/events.ts'
import type { EventStore } from './store/types.ts'
import type { QueryApiConfig } from './config.ts'

export interface AppDeps {
  store: EventStore
  log: Logger
}

export function buildApp (cfg: QueryApiConfig, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast drops pino's generics so that the instance type stays the default one.
    loggerInstance: deps.log.child({ component: 'query-api' }) as FastifyBaseLogger,
    requestIdHeader: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } }
  })

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (isAuditError(err)) {
      return reply.status(err.status ?? 500).send({ error: err.code, message: err.message })
    }
    if (err.validation !== undefined) {
      const v = err.validation[0]
      const param = v === undefined
        ? '(request)'
        : v.keyword === 'additionalProperties'
          ? String((v.params as { additionalProperty?: string }).additionalProperty)
          : (v.instancePath.replace(/^\//, '').replaceAll('/', '.') || String((v.params as { missingProperty?: string }).missingProperty ?? '(request)'))
      const why = v?.keyword === 'additionalProperties' ? 'is not a known parameter' : (v?.message ?? 'is invalid')
      return reply.status(400).send({ error: 'AUD_ERR_API_BAD_REQUEST', message: `Invalid parameter ${param}: ${why}` })
    }
    if (typeof err.statusCode === 'number' && err.statusCode < 500) {
      return reply.status(err.statusCode).send({ error: err.code ?? 'AUD_ERR_API_BAD_REQUEST', message: err.message })
    }
    reply.log.error({ err }, 'Request failed.')
    const internal = new AuditError('AUD_ERR_API_INTERNAL')
    return reply.status(500).send({ error: internal.code, message: internal.message })
  })

  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }))
  registerAuth(app, cfg.apiKeys)
  eventsRoutes(app, deps.store, cfg)
  return app
}
