/**
 * Index template of the statistics indices `<prefix>-stats-YYYY.MM.DD` (anonymizer/stats/record.ts).
 * The event template's pattern `<prefix>-*` matches these indices too; this template has the higher
 * priority, so Elasticsearch applies this one alone to them (composable templates do not merge).
 * Core field types only (keyword, long, date), like the event template.
 */
const kw = { type: 'keyword', ignore_above: 1024 } as const
const long = { type: 'long' } as const
const date = { type: 'date' } as const
const obj = (properties: Record<string, unknown>) => ({ properties })
const top = obj({ key: kw, count: long })

/** Pattern of the daily statistics indices (`indexName(prefix, 'stats', bucketStart)`). */
export function statsIndexPattern (prefix: string): string {
  return `${prefix}-stats-*`
}

export const STATS_MAPPINGS = {
  dynamic: false,
  properties: {
    '@timestamp': date,
    id: kw,
    schema: long,
    site: kw,
    granularity: kw,
    period: obj({ start: date, end: date }),
    // A JSON boolean stored as keyword, like ssh.invalid_user in the event template.
    partial: kw,
    hits: long,
    bytes: long,
    pageviews: long,
    visits: long,
    visitors: long,
    status: obj({ '2xx': long, '3xx': long, '4xx': long, '5xx': long, other: long }),
    humans: obj({ hits: long, visitors: long }),
    bots: obj({ hits: long, visitors: long }),
    top: obj({ pages: top, entry_pages: top, referrer_domains: top, browsers: top, os: top, devices: top })
  }
} as const

/** Priority above the event template's (100): both patterns match `<prefix>-stats-*`. */
export const STATS_TEMPLATE_PRIORITY = 200

/** The statistics template; `lifecyclePolicy` (elasticsearch.ilm.statsPolicy) is named only when set, like the event template's. */
export function statsTemplate (prefix: string, replicas = 0, lifecyclePolicy = ''): { name: string, body: Record<string, unknown> } {
  return {
    name: `${prefix}-stats`,
    body: {
      index_patterns: [statsIndexPattern(prefix)],
      priority: STATS_TEMPLATE_PRIORITY,
      template: {
        settings: {
          number_of_shards: 1,
          number_of_replicas: replicas,
          'index.refresh_interval': '5s',
          ...(lifecyclePolicy === '' ? {} : { 'index.lifecycle.name': lifecyclePolicy })
        },
        mappings: STATS_MAPPINGS
      },
      _meta: { managed_by: 'auditline', schema: 1 }
    }
  }
}
