/**
 * Which statistics sites a caller may read: `admin` all of them, a `stats` key those of its tenant
 * (`queryApi.tenants`), every other role none. Pure.
 */
import { AuditError } from '../lib/errors.ts'
import type { ApiKey, Tenant } from './config.ts'
import type { Principal } from './plugins/auth.ts'
import type { SiteScope } from './store/types.ts'

/** The sites `p` may read, or undefined when its roles give it no statistics at all. */
export function siteScope (p: Principal, tenants: readonly Tenant[]): SiteScope | undefined {
  if (p.roles.includes('admin')) return { all: true }
  if (!p.roles.includes('stats') || p.tenant === undefined) return undefined
  const t = tenants.find(x => x.id === p.tenant)
  // Config validation makes every stats key name a listed tenant; a missing one still sees nothing.
  if (t === undefined) return { all: false, exact: [], suffixes: [] }
  const exact: string[] = []
  const suffixes: string[] = []
  for (const s of t.sites) {
    if (s.startsWith('*.')) suffixes.push(s.slice(1))
    else exact.push(s)
  }
  return { all: false, exact, suffixes }
}

/** Whether `site` is in `scope` (site names compare in lower case). */
export function inScope (scope: SiteScope, site: string): boolean {
  if (scope.all) return true
  const s = site.toLowerCase()
  return scope.exact.includes(s) || scope.suffixes.some(x => s.endsWith(x) && s.length > x.length)
}

/**
 * Cross-field checks the schema cannot express: a `stats` key (without `admin`) must name a tenant that
 * `tenants` lists, otherwise it would silently see nothing; tenant ids are unique.
 */
export function checkTenants (keys: readonly ApiKey[], tenants: readonly Tenant[]): void {
  const problems: string[] = []
  const ids = new Set<string>()
  tenants.forEach((t, i) => {
    if (ids.has(t.id)) problems.push(`queryApi.tenants[${i}].id: ${t.id} is listed twice`)
    ids.add(t.id)
  })
  keys.forEach((k, i) => {
    if (!k.roles.includes('stats') || k.roles.includes('admin')) return
    if (k.tenant === undefined) problems.push(`queryApi.apiKeys[${i}].tenant: a stats key needs the tenant whose sites it may read`)
    else if (!ids.has(k.tenant)) problems.push(`queryApi.apiKeys[${i}].tenant: ${k.tenant} is not in queryApi.tenants`)
  })
  if (problems.length > 0) throw new AuditError('AUD_ERR_CONFIG_INVALID', [problems.join('; ')])
}
