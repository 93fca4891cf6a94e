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
      // String concatenation rather than map/join: this runs for every event at the collector and the indexer.
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ','
          const v: unknown = value[i]
          out += canonicalize(v === undefined ? null : v)
        }
        return out + ']'
      }
      const obj = value as Record<string, unknown>
      // Default sort compares UTF-16 code units, as §3.2.3 requires.
      const keys = Object.keys(obj).sort()
      let out = '{'
      let first = true
      for (const k of keys) {
        const v = obj[k]
        if (v === undefined) continue
        out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalize(v)
        first = false
      }
      return out + '}'
    }
    default:
      throw new TypeError(`JCS cannot represent a ${typeof value}`)
  }
}
