import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errors, type Client } from '@elastic/elasticsearch'
import { ILM_POLICIES, ensureTemplates, eventTemplate, type TemplateConfig } from '../../../lib/elasticsearch.ts'
import { statsTemplate } from '../../../lib/stats-template.ts'
import { TOPICS } from '../../../lib/topics.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { isAuditError } from '../../../lib/errors.ts'

const DIR = fileURLToPath(new URL('../../../deploy/elasticsearch/', import.meta.url))
const DAY = 24 * 3600 * 1000

/**
 * The timeseries lifecycle's rules as Elasticsearch 8.19 checks them on `PUT _ilm/policy`
 * (x-pack TimeseriesLifecycleType: phases, allowed actions per phase, hot actions that need a rollover,
 * min_age not decreasing), plus the options of the actions auditline uses.
 */
const PHASES = ['hot', 'warm', 'cold', 'frozen', 'delete']
const ACTIONS: Record<string, readonly string[]> = {
  hot: ['set_priority', 'unfollow', 'rollover', 'readonly', 'downsample', 'shrink', 'forcemerge', 'searchable_snapshot'],
  warm: ['set_priority', 'unfollow', 'readonly', 'downsample', 'allocate', 'migrate', 'shrink', 'forcemerge'],
  cold: ['set_priority', 'unfollow', 'readonly', 'downsample', 'searchable_snapshot', 'allocate', 'migrate', 'freeze'],
  frozen: ['unfollow', 'searchable_snapshot'],
  delete: ['wait_for_snapshot', 'delete']
}
const HOT_NEEDS_ROLLOVER = new Set(['readonly', 'shrink', 'forcemerge', 'downsample', 'searchable_snapshot'])
const UNIT_MS: Record<string, number> = { d: DAY, h: 3600_000, m: 60_000, s: 1000, ms: 1, micros: 1e-3, nanos: 1e-6 }
/** Actions that leave the index read-only (forcemerge and shrink set the write block first). */
const MAKES_READ_ONLY = new Set(['readonly', 'forcemerge', 'shrink', 'searchable_snapshot', 'downsample'])
/** Actions that replace the index by one of another name (`shrink-…`, `restored-…`, `downsample-…`). */
const RENAMES_INDEX = new Set(['shrink', 'searchable_snapshot', 'downsample'])

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const isInt = (v: unknown, min: number): boolean => Number.isInteger(v) && (v as number) >= min

function minAgeMs (v: unknown): number | undefined {
  const m = typeof v === 'string' ? /^(\d+)(d|h|m|s|ms|micros|nanos)$/.exec(v) : null
  return m === null ? undefined : Number(m[1]) * (UNIT_MS[m[2] as string] as number)
}

function checkActionOptions (phase: string, action: string, opts: unknown): string[] {
  const at = `${phase}.${action}`
  if (!isObj(opts)) return [`${at}: options must be an object`]
  const keys = Object.keys(opts)
  switch (action) {
    case 'set_priority':
      return keys.join() === 'priority' && (opts.priority === null || isInt(opts.priority, 0)) ? [] : [`${at}: needs exactly priority, an integer ≥ 0 or null`]
    case 'readonly':
    case 'delete':
      return keys.length === 0 ? [] : [`${at}: takes no options`]
    case 'forcemerge':
      return isInt(opts.max_num_segments, 1) && keys.every(k => k === 'max_num_segments' || (k === 'index_codec' && opts.index_codec === 'best_compression'))
        ? []
        : [`${at}: needs max_num_segments ≥ 1 (and optionally index_codec: best_compression)`]
    default:
      return [`${at}: options not checked by this test; add the action's options here`]
  }
}

/** Problems of a `PUT _ilm/policy/<name>` body; empty when Elasticsearch would accept it. */
function policyProblems (body: unknown): string[] {
  if (!isObj(body) || Object.keys(body).join() !== 'policy' || !isObj(body.policy)) return ['body must be { "policy": { … } }']
  const policy = body.policy
  const problems = Object.keys(policy).filter(k => !['phases', '_meta'].includes(k)).map(k => `unknown policy field ${k}`)
  if (!isObj(policy.phases)) return [...problems, 'policy.phases must be an object']
  let previousAge = 0
  for (const phase of PHASES.filter(p => p in (policy.phases as Obj))) {
    const spec = (policy.phases as Obj)[phase]
    if (!isObj(spec)) { problems.push(`${phase}: must be an object`); continue }
    problems.push(...Object.keys(spec).filter(k => !['min_age', 'actions'].includes(k)).map(k => `${phase}: unknown field ${k}`))
    const age = spec.min_age === undefined ? 0 : minAgeMs(spec.min_age)
    if (age === undefined) problems.push(`${phase}.min_age ${String(spec.min_age)} is not <integer><d|h|m|s|ms|micros|nanos>`)
    else if (age < previousAge) problems.push(`${phase}.min_age is less than an earlier phase's`)
    else previousAge = age
    if (!isObj(spec.actions)) { problems.push(`${phase}.actions must be an object`); continue }
    for (const [action, opts] of Object.entries(spec.actions)) {
      if (!(ACTIONS[phase] ?? []).includes(action)) { problems.push(`invalid action ${action} in phase ${phase}`); continue }
      if (phase === 'hot' && HOT_NEEDS_ROLLOVER.has(action) && !('rollover' in spec.actions)) problems.push(`hot.${action} needs a rollover action`)
      problems.push(...checkActionOptions(phase, action, opts))
    }
  }
  problems.push(...Object.keys(policy.phases).filter(p => !PHASES.includes(p)).map(p => `unknown phase ${p}`))
  return problems
}

const readPolicy = (file: string): { policy: { phases: Record<string, { min_age?: string, actions: Obj }>, _meta: Obj } } =>
  JSON.parse(readFileSync(join(DIR, file), 'utf8'))

describe('deploy/elasticsearch ILM policies', () => {
  const files = readdirSync(DIR).filter(f => f.endsWith('.json')).sort()

  it('ships one policy per templated class of daily indices: events and statistics', () => {
    assert.deepEqual(files, ['ilm-auditline-events.json', 'ilm-auditline-stats.json'])
  })

  it('holds exactly the policies `auditline init` installs', () => {
    assert.deepEqual(readPolicy('ilm-auditline-events.json'), { policy: ILM_POLICIES.events })
    assert.deepEqual(readPolicy('ilm-auditline-stats.json'), { policy: ILM_POLICIES.stats })
  })

  for (const file of ['ilm-auditline-events.json', 'ilm-auditline-stats.json']) {
    describe(file, () => {
      const body = readPolicy(file)
      const phases = body.policy.phases
      const actions = Object.values(phases).flatMap(p => Object.keys(p.actions))

      it('passes the timeseries lifecycle checks (phase names, actions per phase, options, min_age format and order)', () => {
        assert.deepEqual(policyProblems(body), [])
      })

      it('has no delete phase and no delete action: expired indices go through auditline retention, which records them', () => {
        assert.ok(!('delete' in phases))
        assert.ok(!actions.includes('delete'))
        assert.ok(!actions.includes('wait_for_snapshot'))
      })

      it('goes hot → warm (read-only, one segment, lower priority)', () => {
        assert.ok('hot' in phases && 'warm' in phases)
        const warm = phases.warm?.actions as Obj
        assert.deepEqual(warm.forcemerge, { max_num_segments: 1 })
        assert.ok('readonly' in warm)
        const priority = (p: string): number => ((phases[p]?.actions.set_priority as { priority: number } | undefined)?.priority ?? -1)
        assert.ok(priority('warm') < priority('hot'))
      })

      it('makes no index read-only before a replay of the indexed topics (their Kafka retention + one day) is over', () => {
        const replayMs = Math.max(...(['sshd', 'ftp', 'db', 'panel', 'api', 'stats'] as const).map(k => TOPICS[k].retentionMs)) + DAY
        for (const [name, p] of Object.entries(phases)) {
          if (Object.keys(p.actions).some(a => MAKES_READ_ONLY.has(a))) assert.ok((minAgeMs(p.min_age) ?? 0) >= replayMs, `${name}.min_age ${String(p.min_age)}`)
        }
      })

      it('never replaces an index by one of another name, which retention, verify and the seals look up by name', () => {
        assert.deepEqual(actions.filter(a => RENAMES_INDEX.has(a)), [])
      })

      it('says in its _meta that auditline manages it', () => {
        assert.equal(body.policy._meta.managed_by, 'auditline')
      })
    })
  }

  it('the checker refuses what Elasticsearch refuses', () => {
    const p = (phases: Obj): unknown => ({ policy: { phases } })
    assert.deepEqual(policyProblems(p({ warm: { min_age: '2d', actions: { delete: {} } } })), ['invalid action delete in phase warm'])
    assert.deepEqual(policyProblems(p({ hot: { actions: { forcemerge: { max_num_segments: 1 } } } })), ['hot.forcemerge needs a rollover action'])
    assert.match(policyProblems(p({ warm: { min_age: '2 days', actions: {} } })).join(), /not <integer>/)
    assert.match(policyProblems(p({ warm: { min_age: '1.5d', actions: {} } })).join(), /not <integer>/)
    assert.deepEqual(policyProblems(p({ warm: { min_age: '10d', actions: {} }, cold: { min_age: '2d', actions: {} } })), ['cold.min_age is less than an earlier phase\'s'])
    assert.deepEqual(policyProblems(p({ lukewarm: { actions: {} } })), ['unknown phase lukewarm'])
    assert.deepEqual(policyProblems(p({ warm: { actions: { forcemerge: {} } } })), ['warm.forcemerge: needs max_num_segments ≥ 1 (and optionally index_codec: best_compression)'])
    assert.deepEqual(policyProblems({ phases: {} }), ['body must be { "policy": { … } }'])
  })
})

interface Call { api: 'template' | 'policy', name: string, body: Obj }

/** A client recording template and policy requests; `ilmError` makes every policy request fail like that. */
function recordingClient (ilmError?: Error): { client: Client, calls: Call[] } {
  const calls: Call[] = []
  const client = {
    indices: { putIndexTemplate: async ({ name, ...body }: Obj) => { calls.push({ api: 'template', name: name as string, body }) } },
    ilm: {
      putLifecycle: async ({ name, ...body }: Obj) => {
        if (ilmError !== undefined) throw ilmError
        calls.push({ api: 'policy', name: name as string, body })
      }
    }
  }
  return { client: client as unknown as Client, calls }
}

const lifecycleOf = (body: Obj): unknown => ((body.template as Obj).settings as Obj)['index.lifecycle.name']
const esConfig = (ilm?: Obj): TemplateConfig => loadAppConfig(undefined, {}, { elasticsearch: { url: 'http://es:9200', ...(ilm === undefined ? {} : { ilm }) } }).elasticsearch

describe('index templates and elasticsearch.ilm', () => {
  it('is off by default: no policy named in any template, none installed', async () => {
    const cfg = esConfig()
    assert.deepEqual(cfg.ilm, { eventsPolicy: '', statsPolicy: '', install: false })
    const { client, calls } = recordingClient()
    assert.deepEqual(await ensureTemplates(client, cfg), ['auditline-events', 'auditline-stats', 'auditline_seals'])
    assert.deepEqual(calls.map(c => c.api), ['template', 'template', 'template'])
    for (const c of calls) assert.ok(!Object.keys((c.body.template as Obj).settings as Obj).some(k => k.startsWith('index.lifecycle')), c.name)
  })

  it('names the configured policies in the event and statistics templates only, never in the seals template', async () => {
    const { client, calls } = recordingClient()
    await ensureTemplates(client, esConfig({ eventsPolicy: 'auditline-events', statsPolicy: 'auditline-stats' }))
    assert.deepEqual(calls.map(c => [c.api, c.name, lifecycleOf(c.body)]), [
      ['template', 'auditline-events', 'auditline-events'],
      ['template', 'auditline-stats', 'auditline-stats'],
      ['template', 'auditline_seals', undefined]
    ])
  })

  it('builds the templates with the lifecycle setting only when given a policy name', () => {
    assert.equal(lifecycleOf(eventTemplate('p').body), undefined)
    assert.equal(lifecycleOf(statsTemplate('p').body), undefined)
    assert.equal(lifecycleOf(eventTemplate('p', 1, 'hot-warm').body), 'hot-warm')
    assert.equal(lifecycleOf(statsTemplate('p', 1, 'stats-hot-warm').body), 'stats-hot-warm')
  })

  it('installs auditline\'s policies under the configured names before the templates when ilm.install is set', async () => {
    const { client, calls } = recordingClient()
    await ensureTemplates(client, esConfig({ eventsPolicy: 'ev', statsPolicy: 'st', install: true }))
    assert.deepEqual(calls.map(c => [c.api, c.name]), [['policy', 'ev'], ['policy', 'st'], ['template', 'auditline-events'], ['template', 'auditline-stats'], ['template', 'auditline_seals']])
    assert.deepEqual(calls[0]?.body, { policy: ILM_POLICIES.events })
    assert.deepEqual(calls[1]?.body, { policy: ILM_POLICIES.stats })
  })

  it('installs only the policies that are named', async () => {
    const { client, calls } = recordingClient()
    await ensureTemplates(client, esConfig({ statsPolicy: 'st', install: true }))
    assert.deepEqual(calls.filter(c => c.api === 'policy').map(c => c.name), ['st'])
    assert.equal(lifecycleOf(calls.find(c => c.name === 'auditline-events')?.body as Obj), undefined)
  })

  it('refuses ilm.install without a policy name, or with one name for both, before any request', async () => {
    for (const ilm of [{ install: true }, { eventsPolicy: 'same', statsPolicy: 'same', install: true }]) {
      const { client, calls } = recordingClient()
      await assert.rejects(ensureTemplates(client, esConfig(ilm)), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /elasticsearch\.ilm/.test((err as Error).message))
      assert.deepEqual(calls, [])
    }
  })

  it('reports a cluster without ILM as a configuration error naming the policy, and puts no template', async () => {
    // What the integ-test distribution answers to PUT _ilm/policy/<name>.
    const noIlm = new errors.ResponseError({ statusCode: 400, body: { error: 'no handler found for uri [/_ilm/policy/ev] and method [PUT]' }, headers: {}, warnings: null } as unknown as ConstructorParameters<typeof errors.ResponseError>[0])
    const { client, calls } = recordingClient(noIlm)
    await assert.rejects(ensureTemplates(client, esConfig({ eventsPolicy: 'ev', install: true })),
      (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /policy ev/.test((err as Error).message) && (err as Error).cause === noIlm)
    assert.deepEqual(calls, [])
  })

  it('takes the policy names from AUDITLINE_ELASTICSEARCH__ILM__* and refuses names Elasticsearch would not take', () => {
    const cfg = loadAppConfig(undefined, { AUDITLINE_ELASTICSEARCH__ILM__EVENTS_POLICY: 'auditline-events', AUDITLINE_ELASTICSEARCH__ILM__INSTALL: 'true' }, { elasticsearch: { url: 'http://es:9200' } })
    assert.deepEqual(cfg.elasticsearch.ilm, { eventsPolicy: 'auditline-events', statsPolicy: '', install: true })
    for (const bad of ['Auditline', 'a b', '_x', 'a,b', 'a*'] as const) {
      assert.throws(() => loadAppConfig(undefined, {}, { elasticsearch: { ilm: { eventsPolicy: bad } } }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'), bad)
    }
  })
})
