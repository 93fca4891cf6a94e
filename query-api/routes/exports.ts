/**
 * Evidence exports: `POST /v1/exports` starts a job, `GET /v1/exports/{id}` reports its progress,
 * `GET /v1/exports/{id}/bundle` downloads the tar (docs/exports.md). Starting and downloading are audited
 * (action `api_export`) before they are served.
 */
import { createReadStream } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { AuditError } from '../../lib/errors.ts'
import { requireRole, type Principal } from '../plugins/auth.ts'
import { recordOrRefuse, type ApiAuditor } from '../audit.ts'
import type { ExportJob, ExportJobs } from '../exports.ts'
import { EventsQuery, toFilter, type EventsQueryT } from './events.ts'

export const ExportBody = Type.Composite([
  Type.Omit(EventsQuery, ['size', 'order', 'after', 'reason', 'case']),
  Type.Object({
    case_id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._#/-]*$', description: 'Case the export is made for (recorded in the bundle and in the API\'s audit event).' }),
    reason: Type.String({ minLength: 3, maxLength: 512, description: 'Why the export is made.' })
  })
], { additionalProperties: false })

export type ExportBodyT = Static<typeof ExportBody>

const JobId = Type.Object({ id: Type.String({ format: 'uuid' }) }, { additionalProperties: false })

/** What a client sees of a job (never the file path or the owner's key). */
function view (job: ExportJob): Record<string, unknown> {
  return {
    id: job.id,
    status: job.status,
    case_id: job.caseId,
    created: job.created,
    progress: job.progress,
    ...(job.finished === undefined ? {} : { finished: job.finished }),
    ...(job.counts === undefined ? {} : { counts: job.counts }),
    ...(job.error === undefined ? {} : { error: job.error }),
    ...(job.status === 'done' ? { bundle: `/v1/exports/${job.id}/bundle` } : {})
  }
}

export function exportsRoutes (app: FastifyInstance, jobs: ExportJobs | undefined, auditor: ApiAuditor, limits: { maxRangeDays: number }): void {
  const need = (): ExportJobs => {
    if (jobs === undefined) throw new AuditError('AUD_ERR_EXPORT_BUILD', ['exports are not enabled on this server'])
    return jobs
  }
  /** A job is visible to the key that started it and to admins; to anyone else it does not exist. */
  const own = (req: FastifyRequest, p: Principal): ExportJob => {
    const { id } = req.params as Static<typeof JobId>
    const job = need().get(id)
    if (job === undefined || (job.ownerKey !== p.keyId && !p.roles.includes('admin'))) throw new AuditError('AUD_ERR_API_NOT_FOUND', ['export', id])
    return job
  }

  app.post('/v1/exports', {
    schema: {
      summary: 'Start an evidence export',
      description: 'The same typed filters as GET /v1/events (as JSON), plus `case_id` and `reason`. Answers 202 with the job; poll GET /v1/exports/{id}. Roles: auditor, admin.',
      tags: ['exports'],
      body: ExportBody
    }
  }, async (req, reply) => {
    const principal = requireRole(req, ['auditor'], 'export events')
    const body = req.body as ExportBodyT
    const filter = toFilter(body as unknown as EventsQueryT, limits.maxRangeDays)
    const j = need()
    await recordOrRefuse(auditor, { action: 'api_export', outcome: 'success', principal, route: '/v1/exports', query: { ...filter }, status: 202, reason: body.reason, caseId: body.case_id, sourceIp: req.ip })
    const job = j.submit({ filter, caseId: body.case_id, reason: body.reason, requester: principal.owner, ownerKey: principal.keyId })
    return await reply.status(202).send(view(job))
  })

  app.get('/v1/exports/:id', {
    schema: { summary: 'Status and progress of an evidence export', tags: ['exports'], params: JobId }
  }, async (req) => {
    const principal = requireRole(req, ['auditor'], 'read exports')
    return view(own(req, principal))
  })

  app.get('/v1/exports/:id/bundle', {
    schema: { summary: 'Download an evidence bundle (tar)', description: 'Check it offline with `auditline verify-export FILE --public-key KEY`.', tags: ['exports'], params: JobId }
  }, async (req, reply) => {
    const principal = requireRole(req, ['auditor'], 'download exports')
    const job = own(req, principal)
    if (job.status !== 'done' || job.file === undefined) throw new AuditError('AUD_ERR_EXPORT_NOT_READY', [job.id, job.status])
    await recordOrRefuse(auditor, { action: 'api_export', outcome: 'success', principal, route: '/v1/exports/:id/bundle', query: { export_id: job.id, download: true }, status: 200, results: job.counts?.events, caseId: job.caseId, sourceIp: req.ip })
    return await reply
      .header('content-type', 'application/x-tar')
      .header('content-disposition', `attachment; filename="evidence-${job.id}.tar"`)
      .send(createReadStream(job.file))
  })
}
