/**
 * Elasticsearch-style index patterns for stores that have no Elasticsearch to resolve them: `auditline verify`
 * and retention on the embedded store (#7) select "indices" by the same patterns as on Elasticsearch.
 */

/** ES-style index pattern → predicate: comma-separated, `*` wildcards, `-name` excludes. */
export function indexMatcher (pattern: string): (index: string) => boolean {
  const re = (p: string): RegExp => new RegExp('^' + p.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
  const parts = pattern.split(',').map(s => s.trim()).filter(s => s !== '')
  const include = parts.filter(p => !p.startsWith('-')).map(re)
  const exclude = parts.filter(p => p.startsWith('-')).map(p => re(p.slice(1)))
  return index => include.some(r => r.test(index)) && !exclude.some(r => r.test(index))
}
