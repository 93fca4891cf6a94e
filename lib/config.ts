/**
 * Configuration: one YAML (or JSON) file gives structure, `AUDITLINE_*` environment variables override
 * it and supply secrets. Parsed and validated once at the entry point, then deep-frozen and passed down.
 * Components never read `process.env` themselves.
 *
 * Env override syntax: `AUDITLINE_<SECTION>__<FIELD>[__<FIELD>…]`, segments in UPPER_SNAKE that map to
 * camelCase keys: `AUDITLINE_KAFKA__BROKERS=a:9092,b:9092`, `AUDITLINE_QUERY_API__PORT=8080`.
 * Arrays of scalars take a comma-separated list; objects and arrays of objects take JSON.
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject } from 'ajv'
import type { TSchema, Static } from '@sinclair/typebox'
import { parse as parseYaml } from 'yaml'
import { AuditError } from './errors.ts'

const ENV_PREFIX = 'AUDITLINE_'

/**
 * `AUDITLINE_*` variables that are not configuration: read by deploy/local and the test suite. They pass through,
 * so that a child `auditline` started from a shell or test that sets them does not refuse to start.
 */
export const NOT_CONFIG_ENV: ReadonlySet<string> = new Set(['AUDITLINE_KEEP_STACK', 'AUDITLINE_STACK_JAVA_HOME', 'AUDITLINE_FAULT_EVENTS', 'AUDITLINE_TEST_ES_OUTAGE'])

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false })

export interface LoadOptions {
  /** Path of the config file; absent means "defaults + env only". */
  file?: string | undefined
  /** Environment to read overrides from (the entry point passes `process.env`). */
  env?: Readonly<Record<string, string | undefined>>
  /** Values applied after the file and before env (e.g. CLI flags). */
  overrides?: Record<string, unknown>
}

/** Reads, merges, validates (filling defaults) and deep-freezes a config. Throws AUD_ERR_CONFIG_*. */
export function loadConfig<S extends TSchema> (schema: S, opts: LoadOptions = {}): Readonly<Static<S>> {
  let raw: Record<string, unknown> = {}
  if (opts.file !== undefined) raw = readConfigFile(opts.file)
  if (opts.overrides !== undefined) raw = deepMerge(raw, opts.overrides)
  if (opts.env !== undefined) raw = deepMerge(raw, envOverrides(schema, opts.env))
  return validateConfig(schema, raw)
}

/** Validates `raw` against `schema`, fills defaults, returns a deep-frozen copy. Pure. */
export function validateConfig<S extends TSchema> (schema: S, raw: unknown): Readonly<Static<S>> {
  const copy = structuredClone(raw ?? {})
  const check = ajv.compile(schema)
  if (!check(copy)) throw new AuditError('AUD_ERR_CONFIG_INVALID', [describeErrors(check.errors)])
  return deepFreeze(copy as Static<S>)
}

function readConfigFile (file: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_READ', [file, err], { cause: err })
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_READ', [file, err], { cause: err })
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${file}: top level must be a mapping`])
  }
  return doc as Record<string, unknown>
}

/** Turns `AUDITLINE_*` variables into a nested object, typed by the schema at each path. */
export function envOverrides (schema: TSchema, env: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || NOT_CONFIG_ENV.has(name)) continue
    const path = name.slice(ENV_PREFIX.length).split('__').map(camelCase)
    const target = schemaAt(schema, path)
    if (target === undefined) {
      throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${name} names no configuration field`])
    }
    setPath(out, path, coerce(name, value, target))
  }
  return out
}

function camelCase (segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase())
}

function schemaAt (schema: TSchema, path: readonly string[]): TSchema | undefined {
  let node: TSchema | undefined = schema
  for (const key of path) {
    const props = node?.properties as Record<string, TSchema> | undefined
    node = props?.[key]
    if (node === undefined) return undefined
  }
  return node
}

function coerce (name: string, value: string, schema: TSchema): unknown {
  const type = schema.type as string | undefined
  const itemType = (schema.items as TSchema | undefined)?.type as string | undefined
  try {
    if (type === 'object' || (type === 'array' && itemType === 'object')) return JSON.parse(value)
    if (type === 'array') {
      if (value.trim().startsWith('[')) return JSON.parse(value)
      return value.split(',').map(s => s.trim()).filter(s => s !== '').map(s => scalar(s, itemType))
    }
    return scalar(value, type)
  } catch (err) {
    throw new AuditError('AUD_ERR_CONFIG_INVALID', [`${name}: ${(err as Error).message}`])
  }
}

function scalar (value: string, type: string | undefined): unknown {
  if (type === 'integer' || type === 'number') {
    const n = Number(value)
    if (!Number.isFinite(n)) throw new Error(`expected a number, got "${value}"`)
    return n
  }
  if (type === 'boolean') {
    if (value === 'true' || value === '1') return true
    if (value === 'false' || value === '0') return false
    throw new Error(`expected true or false, got "${value}"`)
  }
  return value
}

function setPath (obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = obj
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    if (typeof next !== 'object' || next === null) node[key] = {}
    node = node[key] as Record<string, unknown>
  }
  node[path[path.length - 1] as string] = value
}

export function deepMerge (base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(over)) {
    const b = out[k]
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v
  }
  return out
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function describeErrors (errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map(e => {
    const where = e.instancePath === '' ? '(root)' : e.instancePath.slice(1).replaceAll('/', '.')
    if (e.keyword === 'additionalProperties') return `${where}: unknown field "${String(e.params.additionalProperty)}"`
    return `${where}: ${e.message ?? 'invalid'}`
  }).join('; ')
}

export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
