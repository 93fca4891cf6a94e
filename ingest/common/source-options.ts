/**
 * Validation of `ingest.sources[].options` for one source type: unknown keys and wrong types are refused
 * with a message that names the option (`ingest.sources[].options.timezone: …`). Pure.
 */
import type { TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { AuditError } from '../../lib/errors.ts'

const ajv = new Ajv({ allErrors: false, strict: false, useDefaults: true })

/** Validates and fills defaults; throws AUD_ERR_CONFIG_INVALID naming the first offending option. */
export function validateSourceOptions<T> (schema: TSchema, raw: Readonly<Record<string, unknown>>): T {
  const copy = structuredClone(raw) as Record<string, unknown>
  const check = ajv.compile(schema)
  if (!check(copy)) {
    const e = check.errors?.[0]
    const key = e?.keyword === 'additionalProperties'
      ? String(e.params.additionalProperty)
      : (e?.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.')
    const why = e?.keyword === 'additionalProperties' ? 'unknown option' : (e?.message ?? 'invalid')
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`ingest.sources[].options${key === '' ? '' : `.${key}`}: ${why}`])
  }
  return copy as T
}

/** Throws AUD_ERR_CONFIG_INVALID for option `key`. */
export function invalidOption (key: string, why: string): never {
  throw new AuditError('AUD_ERR_CONFIG_INVALID', [`ingest.sources[].options.${key}: ${why}`])
}
