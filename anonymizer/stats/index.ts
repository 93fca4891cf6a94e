/**
 * The statistics stage: anonymized web access records → per-site hourly and daily statistics documents
 * (docs/stats.md).
 */
export { validate, start, type StatsDeps } from './run.ts'
export { StatsConfigSchema, DEFAULT_STATIC_EXTENSIONS, type StatsConfig } from './config.ts'
export { StatsAggregator, aggregateAll, isPageview, isStaticPath, externalReferrerHost, statusClass, type AggregatorOptions, type AddResult, type Emission } from './aggregate.ts'
export { StatsDocumentSchema, assertStatsDocument, statsDocumentId, STATS_SCHEMA_VERSION, type StatsDocument, type Granularity } from './record.ts'
