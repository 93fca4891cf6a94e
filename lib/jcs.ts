/**
 * RFC 8785 JSON Canonicalization Scheme. ECMAScript's own JSON serialization of strings and numbers is
 * what the RFC prescribes (§3.2.2), so only key order (UTF-16 code units, §3.2.3) and the rejection of
 * values JSON cannot hold need code here.
 */
export function canonicalize (value: unknown): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean': return value ? 'true' : 'false'
    case 'string': return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS cannot represent non-finite numbers')
      return JSON.stringify(value)
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map(v => canonicalize(v === undefined ? null : v)).join(',') + ']'
      const obj = value as Record<string, unknown>
      // Default sort compares UTF-16 code units, as §3.2.3 requires.
      const keys = Object.keys(obj).filter(k => obj[k] !== undefined).sort()
      return '{' + keys.map(k => JSON.stringify(k) + ':' + canonicalize(obj[k])).join(',') + '}'
    }
    default:
      throw new TypeError(`JCS cannot represent a ${typeof value}`)
  }
}
