/**
 * One behaviour suite, two stores (#7 acceptance): the same tests run against the distributed mode (Kafka +
 * Elasticsearch) and the embedded mode (SQLite). Data goes through the real pipeline in both: log lines into
 * the files the collectors follow, control-panel changes through the panel intake, and everything is read back
 * through the query API, `auditline verify`, `auditline retention` and `auditline verify-export`. The expected
 * events come from the collectors' own line handling (`auditline parse`) and the intake's transform, the
 * expected statistics from the pure aggregator, independently of either store.
 */
import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { BlockList, isIPv4 } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { createKey } from '../../../lib/apikey.ts'
import type { Ctx } from '../../../lib/component.ts'
import { eventId, verifyEventHash, type AuditEvent } from '../../../lib/ecs.ts'
import { indexName } from '../../../lib/elasticsearch.ts'
import { readTar } from '../../../lib/evidence.ts'
import { createLogger } from '../../../lib/log.ts'
import type { AppConfig } from '../../../cli/config.ts'
import { cliVerifyExport } from '../../../cli/export.ts'
import { parseFile } from '../../../cli/parse-file.ts'
import { defaultGraceMs, writeKeyPair, type VerifyOptions } from '../../../cli/verify.ts'
import { aggregateAll } from '../../../anonymizer/stats/aggregate.ts'
import type { StatsDocument } from '../../../anonymizer/stats/record.ts'
import { ACTION_DONE, ACTION_INTENT } from '../../../indexer/retention/record.ts'
import type { Finding } from '../../../indexer/verify.ts'
import { toEvent } from '../../../ingest/panel-http/transform.ts'
import { mergeTop, type SiteStats } from '../../../query-api/stats-series.ts'
import { anonymizeLines } from '../../helpers/access-log.ts'
import { resealed } from '../../helpers/audit-events.ts'
import { CANARY_LOG_FORMAT, findCanary } from '../../helpers/behaviour-canaries.ts'
import { waitFor } from '../../helpers/stack.ts'
import {
  CANARY_LINES, CANARY_SITE, HOST, MARIADB_FIXTURE, OLD_DAYS, PROFTPD_FIXTURE, RETENTION_NOW, SITE_A, SITE_B,
  authLines, laterPanelChanges, oldAuthLines, panelChanges, webInput, type PanelChange, type WebInput
} from './data.ts'
import { elasticsearchBackend, sqliteBackend, type BehaviourBackend, type Started } from './backends.ts'

type Key = Awaited<ReturnType<typeof createKey>>
type Page = { events: AuditEvent[], total: number, next?: string }

const DAY = 86_400_000
/** The audit classes the collectors and the intake write; the API's own events (class `api`) grow with every call. */
const DATA = 'class=ssh&class=ftp&class=db&class=panel'
/** Collector sources, named after their types so that `auditline parse` yields the same streams and ids. */
const SOURCES = { sshd: 'sshd.log', proftpd: 'proftpd.log', 'mariadb-audit': 'mariadb.log' } as const

const enc = encodeURIComponent

/** A dotted field of an event (`panel.ticket_id`). */
function field (e: AuditEvent, path: string): unknown {
  let v: unknown = e
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k]
  return v
}

function inCidr (ip: unknown, net: string, bits: number): boolean {
  const type = isIPv4(net) ? 'ipv4' : 'ipv6'
  if (typeof ip !== 'string' || isIPv4(ip) !== (type === 'ipv4')) return false
  const block = new BlockList()
  block.addSubnet(net, bits, type)
  return block.check(ip, type)
}

/** Lower-case words of a text field, as a word search sees them. */
function words (v: unknown): string[] {
  return typeof v === 'string' ? v.toLowerCase().split(/[^a-z0-9_]+/) : []
}

const session = (e: AuditEvent): unknown => field(e, 'ssh.session_id') ?? field(e, 'ftp.session_id') ?? field(e, 'db.connection_id')
const ids = (es: readonly AuditEvent[]): string[] => es.map(e => e.event.id).sort()
function withoutIngested (e: AuditEvent): AuditEvent {
  const { ingested: _ingested, ...event } = e.event
  return { ...e, event }
}
const byId = (a: AuditEvent, b: AuditEvent): number => a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0
const named = (fs: readonly Finding[]): string[] => fs.map(f => `${f.kind} ${f.index ?? ''} ${f.id ?? ''}`).sort()
/** What a statistics point and a statistics document say (the `partial` flag depends on when it was emitted). */
const counts = (p: { hits: number, pageviews: number, visits: number, visitors: number, bytes: number }): number[] => [p.hits, p.pageviews, p.visits, p.visitors, p.bytes]

function suite (backend: BehaviourBackend): void {
  let dir: string
  let cfg: AppConfig
  let started: Started | undefined
  let ctx: Ctx
  let keys: Record<'security' | 'auditor' | 'statsA' | 'statsB' | 'admin' | 'panel', Key>
  let sealKeys: { privateFile: string, publicFile: string }
  let sealPublicPem: string
  let web: WebInput
  /** Every event the collectors and the intake made (expected), and what the API returned for DATA (the universe). */
  let expected: AuditEvent[]
  let universe: AuditEvent[]
  const serviceLog: string[] = []
  /** Every API answer of the run, for the leak test. */
  const answers: string[] = []

  async function call (path: string, key: Key, init: { method?: string, body?: unknown } = {}): Promise<{ status: number, text: string, bytes: Buffer }> {
    const res = await fetch(`${(started as Started).url}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `ApiKey ${key.key}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) })
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    const text = bytes.toString('utf8')
    answers.push(text)
    return { status: res.status, text, bytes }
  }

  async function getJson<T> (path: string, key: Key): Promise<T> {
    const r = await call(path, key)
    assert.equal(r.status, 200, `${path}: ${r.text}`)
    return JSON.parse(r.text) as T
  }

  async function search (qs: string, extra = '&size=500&order=asc'): Promise<Page> {
    return await getJson<Page>(`/v1/events?case=BEH-1${extra}&${qs}`, keys.security)
  }

  /** Every event matching `qs`, page by page (oldest first). */
  async function searchAll (qs: string): Promise<AuditEvent[]> {
    const out: AuditEvent[] = []
    let after: string | undefined
    for (;;) {
      const page = await search(qs, `&size=500&order=asc${after === undefined ? '' : `&after=${enc(after)}`}`)
      out.push(...page.events)
      if (page.next === undefined || page.events.length === 0) return out
      after = page.next
    }
  }

  async function postPanel (change: PanelChange): Promise<void> {
    const res = await fetch(`${(started as Started).panelUrl}/v1/panel-events`, {
      method: 'POST',
      headers: { authorization: `ApiKey ${keys.panel.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(change)
    })
    assert.equal(res.status, 202, await res.text())
  }

  function verifyOptions (): VerifyOptions {
    return { publicKeys: [createPublicKey(sealPublicPem)], graceMs: defaultGraceMs(cfg) }
  }

  const freshCtx = (): Ctx => ({ ...ctx, metrics: new Registry() })
  const prefix = (): string => cfg.elasticsearch.indexPrefix
  const dataIndices = (): string => ['ssh', 'ftp', 'db', 'panel'].map(c => `${prefix()}-${c}-*`).join(',')
  const indexOf = (e: AuditEvent): string => indexName(prefix(), e.auditline.class, e['@timestamp'])

  before(async function () {
    this.timeout(240_000)
    dir = await mkdtemp(join(tmpdir(), 'auditline-behaviour-'))
    sealKeys = await writeKeyPair(join(dir, 'seal-key'))
    sealPublicPem = await readFile(sealKeys.publicFile, 'utf8')
    keys = {
      security: await createKey(), auditor: await createKey(), statsA: await createKey(), statsB: await createKey(), admin: await createKey(), panel: await createKey()
    }
    web = webInput(new Date())
    const file = (name: string): string => join(dir, 'logs', name)
    await mkdir(join(dir, 'logs'))
    const webFiles = { a: file('shop-a.access.log'), b: file('shop-b.access.log'), canary: file('canary.access.log') }
    for (const f of [...Object.values(SOURCES).map(file), ...Object.values(webFiles)]) await writeFile(f, '')

    cfg = backend.config({
      stateDir: join(dir, 'state'),
      sections: {
        ingest: {
          checkpointDir: join(dir, 'checkpoints'),
          host: HOST,
          pollMs: 50,
          sources: [
            { name: 'sshd', type: 'sshd', format: 'syslog', paths: [file(SOURCES.sshd)] },
            { name: 'proftpd', type: 'proftpd', format: 'extended', paths: [file(SOURCES.proftpd)] },
            { name: 'mariadb-audit', type: 'mariadb-audit', paths: [file(SOURCES['mariadb-audit'])] },
            { name: 'shop-a', type: 'web-access', format: 'combined', paths: [webFiles.a], options: { vhost: SITE_A } },
            { name: 'shop-b', type: 'web-access', format: 'combined', paths: [webFiles.b], options: { vhost: SITE_B } },
            { name: 'canary', type: 'web-access', format: 'custom', paths: [webFiles.canary], options: { logFormat: CANARY_LOG_FORMAT } }
          ]
        },
        panel: { port: 0, stateDir: join(dir, 'panel'), clients: [{ id: keys.panel.id, hash: keys.panel.hash, name: 'behaviour suite panel' }] },
        // Web lines are of the two days before today: the anonymizer must still serve those epochs, and the
        // statistics stage must still count records that arrive after a later day's (the sites share a channel).
        anonymizer: { graceMs: 3 * DAY },
        stats: { idleMs: 1000, graceMs: 7 * DAY },
        indexer: { seal: { sliceMs: 500, privateKeyFile: sealKeys.privateFile } },
        // Retention runs only when a test says so, with its injected clock.
        retention: { intervalMs: 0, host: 'indexer-1' },
        queryApi: {
          port: 0,
          apiKeys: [
            { id: keys.security.id, hash: keys.security.hash, roles: ['security'], owner: 'secteam' },
            { id: keys.auditor.id, hash: keys.auditor.hash, roles: ['auditor'], owner: 'dpa-auditor' },
            { id: keys.statsA.id, hash: keys.statsA.hash, roles: ['stats'], owner: 'cust-a', tenant: 'tenant-a' },
            { id: keys.statsB.id, hash: keys.statsB.hash, roles: ['stats'], owner: 'cust-b', tenant: 'tenant-b' },
            { id: keys.admin.id, hash: keys.admin.hash, roles: ['admin'], owner: 'ops' }
          ],
          tenants: [{ id: 'tenant-a', sites: [SITE_A, '*.a.example'] }, { id: 'tenant-b', sites: [SITE_B] }]
        }
      }
    })
    const log = createLogger({ level: 'debug', destination: new Writable({ write (c, _e, cb) { serviceLog.push(String(c)); cb() } }) })
    ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
    started = await backend.start(cfg, ctx)

    await appendFile(file(SOURCES.sshd), [...oldAuthLines(), ...authLines()].join('\n') + '\n')
    await appendFile(file(SOURCES.proftpd), await readFile(PROFTPD_FIXTURE))
    await appendFile(file(SOURCES['mariadb-audit']), await readFile(MARIADB_FIXTURE))
    await appendFile(webFiles.a, web.a.lines.join('\n') + '\n')
    await appendFile(webFiles.b, web.b.lines.join('\n') + '\n')
    await appendFile(webFiles.canary, web.canaries.join('\n') + '\n')
    const changes = panelChanges()
    for (const c of changes) await postPanel(c)
    await started.collect.drained()

    // The oracle: the same files through the collectors' own line handling, the changes through the intake's transform.
    expected = changes.map((c, i) => toEvent(c, { clientId: keys.panel.id, sequence: i }))
    for (const [type, name] of Object.entries(SOURCES)) {
      const summary = await parseFile(file(name), type, undefined, HOST, { event: e => { expected.push(e as AuditEvent) }, dead: d => { throw new Error(`dead letter in ${name}: ${d.reason}`) } })
      assert.ok(summary.events > 0, `${name} yields events`)
    }
    universe = await waitFor('every collected line and panel change to be searchable', async () => {
      const page = await search(DATA)
      return page.total === expected.length ? page.events : undefined
    }, 120_000, 500)
    await waitFor('every data event to be sealed', async () => {
      const { summary, findings } = await backend.verify(cfg, { ...verifyOptions(), index: dataIndices() }, log)
      return summary.verified === expected.length && summary.pending === 0 && findings.length === 0 ? true : undefined
    }, 60_000, 500)
  })

  after(async () => {
    await started?.close()
    if (cfg !== undefined) await backend.cleanup(cfg)
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('indexes every collected line and panel change once, exactly as the collectors and the intake made them', () => {
    assert.equal(universe.length, expected.length)
    assert.deepEqual(universe.map(withoutIngested).sort(byId), [...expected].sort(byId))
    for (const e of universe) {
      assert.ok(verifyEventHash(e).ok, `${e.event.id} hashes to its event.hash`)
      assert.ok(e.event.ingested !== undefined, 'the indexer sets event.ingested')
    }
    const streams = new Map<string, number[]>()
    for (const e of universe) streams.set(e.auditline.stream, [...(streams.get(e.auditline.stream) ?? []), e.event.sequence])
    assert.deepEqual([...streams.keys()].sort(), [`${HOST}/mariadb-audit`, `${HOST}/proftpd`, `${HOST}/sshd`, `panel/${keys.panel.id}`])
    for (const [stream, seqs] of streams) assert.deepEqual(seqs.sort((a, b) => a - b), seqs.map((_, i) => i), `${stream} is gap-free`)
  })

  const scoped = (qs: string): string => `${DATA}&${qs}`
  const cases: Array<[string, string, (e: AuditEvent) => boolean]> = [
    ['two user names', scoped('user.name=anna&user.name=dave'), e => ['anna', 'dave'].includes(String(e.user?.name))],
    ['two actions', scoped('event.action=ssh_login&event.action=db_drop_database'), e => ['ssh_login', 'db_drop_database'].includes(e.event.action)],
    ['an outcome', scoped('event.outcome=failure'), e => e.event.outcome === 'failure'],
    ['a host', scoped(`host.name=${HOST}`), e => e.host?.name === HOST],
    ['a category', scoped('event.category=iam'), e => e.event.category.includes('iam')],
    ['a class', 'class=db', e => e.auditline.class === 'db'],
    ['an IPv4 CIDR block', scoped(`source.ip=${enc('10.20.30.0/28')}`), e => inCidr(e.source?.ip, '10.20.30.0', 28)],
    ['an IPv6 CIDR block', scoped(`source.ip=${enc('fd00:a::/120')}`), e => inCidr(e.source?.ip, 'fd00:a::', 120)],
    ['one IPv6 address', scoped(`source.ip=${enc('fd00:a::17')}`), e => e.source?.ip === 'fd00:a::17'],
    ['a time range', scoped('from=2026-11-20T12:00:00Z&to=2026-11-21T12:00:00Z'), e => Date.parse(e['@timestamp']) >= Date.parse('2026-11-20T12:00:00Z') && Date.parse(e['@timestamp']) < Date.parse('2026-11-21T12:00:00Z')],
    ['a ticket', scoped('ticket=OPS-1'), e => field(e, 'panel.ticket_id') === 'OPS-1'],
    ['a customer', scoped('customer=cust-0815'), e => field(e, 'panel.customer') === 'cust-0815'],
    ['an FTP session', scoped('session=27435'), e => session(e) === '27435'],
    ['a database connection', scoped('session=7'), e => session(e) === '7'],
    ['a collector stream', scoped(`stream=${enc(`${HOST}/proftpd`)}`), e => e.auditline.stream === `${HOST}/proftpd`],
    ['a word of a statement', scoped('q=tmpdb'), e => words(field(e, 'db.statement')).includes('tmpdb')],
    ['a word of a reason', scoped('q=cluster'), e => words(e.event.reason).includes('cluster')],
    ['combined filters', scoped('user.name=carol&event.outcome=success&from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z'),
      e => e.user?.name === 'carol' && e.event.outcome === 'success' && e['@timestamp'].startsWith('2026-11-21')]
  ]
  for (const [what, qs, match] of cases) {
    it(`returns exactly the events matching ${what}`, async () => {
      const want = universe.filter(match)
      assert.ok(want.length > 0 && want.length < universe.length, 'the filter selects some events, not all')
      const page = await search(qs)
      assert.equal(page.total, want.length)
      assert.deepEqual(ids(page.events), ids(want))
    })
  }

  it('returns no event for values nothing has, and never a web access line as an audit event', async () => {
    for (const qs of ['user.name=nobody', 'ticket=OPS-404', 'host.name=collector-2', 'session=99999', `source.ip=${enc('198.51.100.0/24')}`, 'q=wp-login.php']) {
      const page = await search(qs)
      assert.deepEqual([page.total, page.events.length], [0, 0], qs)
    }
  })

  it('counts events by action, user and day exactly', async () => {
    type Counts = { total: number, other: number, buckets: Array<{ key: string, count: number }> }
    const tally = (keyOf: (e: AuditEvent) => string | undefined, es: readonly AuditEvent[]): Array<{ key: string, count: number }> => {
      const m = new Map<string, number>()
      for (const e of es) { const k = keyOf(e); if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1) }
      return [...m].map(([key, count]) => ({ key, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    }
    const byAction = await getJson<Counts>(`/v1/events/counts?by=event.action&size=100&case=BEH-1&${DATA}`, keys.security)
    assert.deepEqual(byAction.buckets, tally(e => e.event.action, universe))
    assert.deepEqual([byAction.total, byAction.other], [universe.length, 0])

    const top2 = tally(e => e.user?.name, universe).slice(0, 2)
    const byUser = await getJson<Counts>(`/v1/events/counts?by=user.name&size=2&case=BEH-1&${DATA}`, keys.security)
    assert.deepEqual(byUser.buckets, top2)
    assert.equal(byUser.other, universe.length - top2.reduce((n, b) => n + b.count, 0), 'other: further users and events without one')

    const inRange = universe.filter(e => ['ssh', 'panel'].includes(e.auditline.class) && e['@timestamp'] >= '2026-11-19' && e['@timestamp'] < '2026-11-23')
    const byDay = await getJson<Counts>('/v1/events/counts?by=day&from=2026-11-19T00:00:00Z&to=2026-11-23T00:00:00Z&class=ssh&class=panel&case=BEH-1', keys.security)
    assert.deepEqual(byDay.buckets, ['2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22'].map(day => ({ key: day, count: inRange.filter(e => e['@timestamp'].startsWith(day)).length })))
    assert.equal(byDay.total, inRange.length)
  })

  it('pages with the cursor through every event exactly once, in order, also while newer events arrive', async () => {
    const ascending: AuditEvent[] = []
    let after: string | undefined
    for (let guard = 0; guard < 100; guard++) {
      const page = await search(DATA, `&size=7&order=asc${after === undefined ? '' : `&after=${enc(after)}`}`)
      ascending.push(...page.events)
      if (page.next === undefined) break
      after = page.next
    }
    assert.deepEqual(ids(ascending), ids(universe))
    assert.equal(new Set(ascending.map(e => e.event.id)).size, universe.length, 'no event twice')
    const times = ascending.map(e => Date.parse(e['@timestamp']))
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'oldest first')

    // Newest first, with changes arriving between pages: they sort before the cursor and shift nothing.
    const late = laterPanelChanges()
    const descending: AuditEvent[] = []
    after = undefined
    for (let guard = 0; guard < 100; guard++) {
      const page = await search(DATA, `&size=9&order=desc${after === undefined ? '' : `&after=${enc(after)}`}`)
      descending.push(...page.events)
      const change = late[guard]
      if (change !== undefined) await postPanel(change)
      if (page.next === undefined) break
      after = page.next
    }
    const known = new Set(universe.map(e => e.event.id))
    const seen = descending.filter(e => known.has(e.event.id))
    assert.equal(seen.length, universe.length, 'every earlier event once')
    assert.equal(new Set(seen.map(e => e.event.id)).size, universe.length, 'no event twice')
    await waitFor('the late changes to be searchable', async () => (await search(DATA, '&size=1')).total === universe.length + late.length ? true : undefined, 30_000, 300)
  })

  it('serves the statistics of the seeded web access lines: hourly and daily documents equal to the pure aggregator', async () => {
    const want = aggregateAll(anonymizeLines(web.a.lines, SITE_A), cfg.stats)
    const wantDays = want.filter(d => d.granularity === 'day')
    const [first, second] = web.days
    const end = new Date(Date.parse(second) + DAY).toISOString().slice(0, 10)
    assert.equal(wantDays.length, 2)
    assert.equal(wantDays.reduce((n, d) => n + d.hits, 0), web.a.lines.length, 'every line is a hit')
    const daily = await waitFor('site A\'s daily statistics', async () => {
      const s = await getJson<SiteStats>(`/v1/stats/sites/${SITE_A}?granularity=day&from=${first}&to=${end}&top=5`, keys.statsA)
      return JSON.stringify(s.series.map(p => [p.start, ...counts(p)])) === JSON.stringify(wantDays.map(d => [d.period.start, ...counts(d)])) ? s : undefined
    }, 60_000, 500)
    assert.deepEqual(daily.top.pages, mergeTop(wantDays.map(d => d.top.pages), 5))
    assert.deepEqual(daily.top.browsers, mergeTop(wantDays.map(d => d.top.browsers), 5))

    const wantHours = want.filter(d => d.granularity === 'hour' && d.period.start.startsWith(first))
    const hourly = await getJson<SiteStats>(`/v1/stats/sites/${SITE_A}?granularity=hour&from=${first}&to=${second}`, keys.statsA)
    assert.deepEqual(hourly.series.map(p => [p.start, ...counts(p)]), wantHours.map((d: StatsDocument) => [d.period.start, ...counts(d)]))
    assert.ok(hourly.series.length > 12, 'a day of hours')
  })

  it('keeps tenants apart: a stats key sees only its own sites, another tenant\'s site is answered like one nobody has', async () => {
    type Sites = { sites: Array<{ site: string }> }
    const list = async (key: Key): Promise<string[]> => (await getJson<Sites>('/v1/stats/sites', key)).sites.map(s => s.site)
    assert.deepEqual(await list(keys.statsA), [SITE_A])
    assert.deepEqual(await list(keys.statsB), [SITE_B])
    assert.deepEqual(await list(keys.admin), [CANARY_SITE, SITE_A, SITE_B].sort())
    const [, second] = web.days
    const range = `granularity=day&from=${second}&to=${new Date(Date.parse(second) + DAY).toISOString().slice(0, 10)}`
    const foreign = await call(`/v1/stats/sites/${SITE_A}?${range}`, keys.statsB)
    const nobody = await call(`/v1/stats/sites/nobody.example?${range}`, keys.statsB)
    assert.equal(foreign.status, 404)
    assert.equal(foreign.text.replaceAll(SITE_A, 'SITE'), nobody.text.replaceAll('nobody.example', 'SITE'))
    assert.equal((await call(`/v1/stats/sites/${SITE_B}?${range}`, keys.statsB)).status, 200)
    assert.equal((await call(`/v1/events?case=BEH-1&${DATA}`, keys.statsA)).status, 403, 'a stats key searches no audit events')
  })

  it('exports the database events as a bundle that verify-export checks clean offline', async () => {
    const want = universe.filter(e => e.auditline.class === 'db')
    const start = await call('/v1/exports', keys.auditor, { method: 'POST', body: { class: ['db'], case_id: 'BEH-EXPORT-1', reason: 'behaviour suite export' } })
    assert.equal(start.status, 202, start.text)
    const job = JSON.parse(start.text) as { id: string }
    const done = await waitFor('the export job', async () => {
      const s = await getJson<{ status: string, counts?: { events: number }, error?: unknown }>(`/v1/exports/${job.id}`, keys.auditor)
      if (s.status === 'failed') throw new Error(`export failed: ${JSON.stringify(s.error)}`)
      return s.status === 'done' ? s : undefined
    }, 30_000, 200)
    assert.equal(done.counts?.events, want.length)
    const bundle = await call(`/v1/exports/${job.id}/bundle`, keys.auditor)
    assert.equal(bundle.status, 200)
    const tar = join(dir, 'bundle.tar')
    await writeFile(tar, bundle.bytes)
    const lines = (readTar(bundle.bytes).get('events.ndjson') as Buffer).toString().trim().split('\n')
    assert.deepEqual(lines.map(l => (JSON.parse(l) as AuditEvent).event.id).sort(), ids(want))
    const result = await cliVerifyExport(tar, sealKeys.publicFile)
    assert.deepEqual(result.problems, [])
    assert.equal(result.ok, true)
    assert.equal(result.events, want.length)
  })

  it('verifies an untouched deployment clean', async () => {
    const { summary, findings } = await backend.verify(cfg, verifyOptions(), ctx.log)
    assert.deepEqual(findings, [])
    assert.equal(summary.clean, true)
    assert.ok(summary.verified >= universe.length, `${summary.verified} events verified`)
  })

  it('deletes exactly the expired daily indices, records each deletion searchably, and verify counts their events as retired', async () => {
    const expired = OLD_DAYS.filter(d => d.expired)
    const report = await backend.retention(cfg, freshCtx(), RETENTION_NOW)
    assert.deepEqual(report.expired.map(e => [e.index, e.documents, e.result]).sort(), expired.map(d => [indexName(prefix(), 'ssh', d.day), d.events, 'deleted']).sort())
    assert.deepEqual(report.unmanaged, [])

    const erin = await searchAll('class=ssh&user.name=erin')
    const kept = OLD_DAYS.filter(d => !d.expired)
    assert.deepEqual(erin.map(e => e['@timestamp'].slice(0, 10)).sort(), kept.flatMap(d => Array<string>(d.events).fill(d.day)))

    const records = await waitFor('the deletion records to be searchable', async () => {
      const page = await search(`class=api&event.action=${ACTION_INTENT}&event.action=${ACTION_DONE}`)
      return page.total === 2 * expired.length ? page.events : undefined
    }, 60_000, 500)
    for (const d of expired) {
      const index = indexName(prefix(), 'ssh', d.day)
      const [intent, done] = [ACTION_INTENT, ACTION_DONE].map(a => records.find(e => e.event.action === a && field(e, 'retention.index') === index))
      assert.ok(intent !== undefined && done !== undefined, `both records of ${index}`)
      assert.ok(intent.event.sequence < done.event.sequence, 'the intent is recorded before the deletion')
      assert.equal(field(done, 'retention.documents'), d.events)
      assert.equal(field(done, 'retention.result'), 'deleted')
      assert.ok(verifyEventHash(done).ok)
    }

    const after = await waitFor('verify to see the deletion records', async () => {
      const v = await backend.verify(cfg, verifyOptions(), ctx.log)
      return v.summary.retired > 0 || v.findings.length > 0 ? v : undefined
    }, 30_000, 500)
    assert.deepEqual(after.findings, [])
    assert.equal(after.summary.retired, expired.reduce((n, d) => n + d.events, 0))
  })

  it('names a changed, a removed and a forged event when the store is tampered with', async () => {
    const sshd = universe.filter(e => e.auditline.stream === `${HOST}/sshd` && e.user?.name !== 'erin').sort((a, b) => a.event.sequence - b.event.sequence)
    const [changed, removed, next, last] = [sshd[3], sshd[10], sshd[11], sshd[sshd.length - 1]] as AuditEvent[]
    await backend.tamper.change(cfg, changed.event.id, d => { d.user = { ...d.user, name: 'someone-else' } })
    await backend.tamper.remove(cfg, removed.event.id)
    // Well-formed, correctly self-hashed, next in its stream, and back-dated to look indexed long ago.
    const forged = resealed(last, e => {
      e.event.id = eventId('forged', HOST, 1)
      e.event.sequence = last.event.sequence + 1
      e.user = { name: 'mallory' }
      e.event.ingested = new Date(Date.parse(last.event.ingested as string) - 10_000).toISOString()
    })
    await backend.tamper.insert(cfg, forged)

    const { summary, findings } = await backend.verify(cfg, { ...verifyOptions(), index: `${prefix()}-ssh-*`, graceMs: 1000 }, ctx.log)
    assert.deepEqual(named(findings), [
      `changed ${indexOf(changed)} ${changed.event.id}`,
      `deleted ${indexOf(removed)} ${removed.event.id}`,
      `gap ${indexOf(next)} ${next.event.id}`,
      `inserted ${indexOf(forged)} ${forged.event.id}`
    ].sort())
    assert.deepEqual(findings.find(f => f.kind === 'gap')?.sequence, { from: removed.event.sequence, to: removed.event.sequence })
    assert.equal(summary.clean, false)
  })

  it('leaks no canary visitor address into the store, the API\'s answers or the service log', async () => {
    const [, second] = web.days
    const canaryDay = await waitFor('the canary site\'s statistics', async () => {
      const s = await getJson<SiteStats>(`/v1/stats/sites/${CANARY_SITE}?granularity=day&from=${second}&to=${new Date(Date.parse(second) + DAY).toISOString().slice(0, 10)}`, keys.admin)
      return s.series[0]?.hits === CANARY_LINES ? s : undefined
    }, 60_000, 500)
    assert.equal(canaryDay.series.length, 1, 'every canary line went through the anonymizer and the statistics stage')

    // The store is read before the API is asked for the canaries: it records those searches, filters included.
    const dump = await backend.dump(cfg)
    assert.ok(dump.includes(CANARY_SITE) && dump.includes((universe[0] as AuditEvent).event.id), 'the dump holds the statistics and the events')
    const leaks: string[] = []
    const inStore = findCanary(dump)
    if (inStore !== undefined) leaks.push(`store: ${inStore}`)
    assert.ok((await searchAll('')).length > universe.length, 'every event, the API\'s own included')
    for (const q of ['q=203.0.113.77', `source.ip=${enc('203.0.113.77')}`, `source.ip=${enc('2001:db8:c0de::/48')}`]) {
      assert.equal((await search(q)).total, 0, q)
    }
    answers.forEach((text, i) => {
      const hit = findCanary(text)
      if (hit !== undefined) leaks.push(`API answer ${i}: ${hit}`)
    })
    const inLog = findCanary(serviceLog.join(''))
    if (inLog !== undefined) leaks.push(`service log: ${inLog}`)
    assert.deepEqual(leaks, [])
    assert.ok(serviceLog.length > 0, 'the service log holds the pipeline\'s own lines')
  })
}

for (const backend of [elasticsearchBackend, sqliteBackend]) describe(`behaviour on ${backend.name}`, () => { suite(backend) })
