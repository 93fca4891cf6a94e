/**
 * Configuration of the statistics stage (`stats:` section): `web.access.anon.v1` → `stats.web.v1`.
 * See docs/stats.md for the counting rules these options tune.
 */
import { Type, type Static } from '@sinclair/typebox'

/**
 * File extensions (lower case, without the dot) whose requests are assets, never pageviews: styles,
 * scripts, images, fonts, media, downloads, `robots.txt`/`sitemap.xml`. Compared with the last path segment's
 * extension, case-insensitively, query string ignored.
 */
export const DEFAULT_STATIC_EXTENSIONS: readonly string[] = Object.freeze([
  'css', 'js', 'mjs', 'map',
  'jpg', 'jpeg', 'png', 'gif', 'webp', 'avif', 'svg', 'ico', 'bmp', 'tif', 'tiff',
  'woff', 'woff2', 'ttf', 'otf', 'eot',
  'mp3', 'mp4', 'm4a', 'ogg', 'oga', 'ogv', 'webm', 'wav', 'flac', 'avi', 'mov', 'mpeg', 'mpg', 'flv', 'swf',
  'pdf', 'txt', 'xml', 'csv', 'zip', 'gz', 'tgz', 'tar', 'rar', '7z', 'xz', 'zst', 'bz2', 'exe', 'dmg', 'iso',
  'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'odt', 'ods'
])

export const StatsConfigSchema = Type.Object({
  /** Kafka consumer group of the statistics stage. Example: `auditline-stats`. */
  groupId: Type.String({ default: 'auditline-stats', minLength: 1 }),
  /**
   * How far behind the newest event time seen on a partition the watermark trails (ms). A bucket is first
   * emitted when the watermark passes its end, so this is how long records may arrive out of order without
   * causing a re-emit. Example: `300000` (5 min).
   */
  allowedLatenessMs: Type.Integer({ default: 300_000, minimum: 0 }),
  /**
   * How long after the watermark passed a bucket's end late records still update it (and the updated document
   * is emitted again under the same id). Later records are counted in `auditline_stats_records_total{result="too_late"}`
   * and left out. Example: `3600000` (1 h).
   */
  graceMs: Type.Integer({ default: 3_600_000, minimum: 0 }),
  /**
   * A partition that delivered nothing for this long (wall clock) is taken as caught up: its watermark moves
   * to `now − allowedLatenessMs`, so that a quiet site's last hour is emitted without waiting for traffic.
   * Example: `60000`.
   */
  idleMs: Type.Integer({ default: 60_000, minimum: 1000 }),
  /** Pageviews of one visitor closer than this belong to one visit (a gap of exactly this starts a new one). Example: `1800000` (30 min). */
  sessionGapMs: Type.Integer({ default: 1_800_000, minimum: 60_000 }),
  /**
   * Upper bound of buckets (site × hour and site × day) held in memory. When more are open after a batch, the
   * oldest day of the partition holding it is closed early (emitted, then later records for it are too late).
   * Memory per bucket grows with its distinct visitors (~100 bytes each) and top-list keys. Example: `50000`.
   */
  maxOpenBuckets: Type.Integer({ default: 50_000, minimum: 10 }),
  /** Length of every top list in a document (pages, entry pages, referrer domains, browsers, OS, devices). Example: `25`. */
  topN: Type.Integer({ default: 25, minimum: 1, maximum: 1000 }),
  /**
   * Distinct keys one top list tracks per bucket before further new keys are counted under `(other)`:
   * bounds memory against URL spam. Example: `10000`.
   */
  maxKeysPerList: Type.Integer({ default: 10_000, minimum: 100 }),
  /** Extensions (lower case, no dot) that make a request an asset, not a pageview. Example: `["css", "js", "png"]`. */
  staticExtensions: Type.Array(Type.String({ pattern: '^[a-z0-9]{1,10}$' }), { default: [...DEFAULT_STATIC_EXTENSIONS] }),
  /**
   * Record ids remembered per `web.access.anon.v1` partition to recognise a record the anonymizer delivered twice
   * (after a crash or a group rebalance it re-produces the batch it had not committed); a copy that arrives within
   * this many records of the first is not counted again. ~100 bytes per id; `0` turns it off. Size it above the
   * records one partition receives while the anonymizer group recovers (session timeout × rate). Example: `200000`.
   */
  dedupeWindow: Type.Integer({ default: 200_000, minimum: 0 }),
  /** Largest fetch per partition (bytes): bounds memory together with the batch. Example: `8388608`. */
  maxBytes: Type.Integer({ default: 8_388_608, minimum: 65_536 })
}, { additionalProperties: false, default: {} })

export type StatsConfig = Static<typeof StatsConfigSchema>
