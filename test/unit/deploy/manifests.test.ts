import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'
import { loadAppConfig } from '../../../cli/config.ts'
import { TOPICS } from '../../../lib/topics.ts'

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url))
const COMMANDS = new Set(['init', 'collect', 'panel', 'index', 'anonymize-stage', 'stats-stage', 'serve', 'retention'])

type Obj = Record<string, unknown>
const obj = (v: unknown, what: string): Obj => {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${what} is a mapping`)
  return v as Obj
}
const arr = (v: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(v), `${what} is a list`)
  return v
}

/** Every AUDITLINE_* variable must name a configuration field and carry a value of its type. */
function checkEnv (env: Record<string, string>, what: string): void {
  assert.doesNotThrow(() => loadAppConfig(undefined, { ...env, AUDITLINE_KAFKA__BROKERS: env.AUDITLINE_KAFKA__BROKERS ?? 'k:9092' }), what)
}

describe('deploy/compose/compose.yaml', () => {
  const doc = obj(parse(readFileSync(join(DEPLOY, 'compose', 'compose.yaml'), 'utf8'), { merge: true }), 'compose file')
  const services = obj(doc.services, 'services')

  it('has a 3-broker KRaft cluster whose nodes differ in id and agree on the voters and on durability settings', () => {
    const ids = new Set<unknown>()
    for (const name of ['kafka-1', 'kafka-2', 'kafka-3']) {
      const s = obj(services[name], name)
      assert.match(String(s.image), /^apache\/kafka:3\.9\./)
      const env = obj(s.environment, `${name}.environment`)
      ids.add(env.KAFKA_NODE_ID)
      assert.equal(env.KAFKA_CONTROLLER_QUORUM_VOTERS, '1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093')
      assert.equal(env.KAFKA_DEFAULT_REPLICATION_FACTOR, 3)
      assert.equal(env.KAFKA_MIN_INSYNC_REPLICAS, 2)
      assert.equal(env.KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE, 'false')
      assert.match(String(env.KAFKA_ADVERTISED_LISTENERS), new RegExp(`//${name}:9092`))
    }
    assert.equal(ids.size, 3)
  })

  it('runs Elasticsearch and every auditline stage with a known command, the shared config and valid AUDITLINE_* variables', () => {
    assert.match(String(obj(services.elasticsearch, 'elasticsearch').image), /elasticsearch:8\./)
    const stages: Record<string, string> = { init: 'init', anonymizer: 'anonymize-stage', stats: 'stats-stage', indexer: 'index', 'query-api': 'serve', panel: 'panel' }
    for (const [name, command] of Object.entries(stages)) {
      const s = obj(services[name], name)
      assert.match(String(s.image), /^auditline:/, `${name}.image`)
      const cmd = arr(s.command, `${name}.command`)
      assert.equal(cmd[0], command)
      assert.ok(COMMANDS.has(String(cmd[0])))
      assert.ok(arr(s.volumes, `${name}.volumes`).some(v => String(v).endsWith(':/etc/auditline/auditline.yaml:ro')), `${name} mounts the config`)
      checkEnv(obj(s.environment, `${name}.environment`) as Record<string, string>, `${name}.environment`)
    }
    // Long-running stages get a grace period longer than the 10 s shutdown budget.
    for (const name of ['anonymizer', 'stats', 'indexer', 'query-api', 'panel']) assert.equal(obj(services[name], name).stop_grace_period, '15s')
  })

  it('ships an auditline.yaml that the configuration schema accepts', () => {
    assert.doesNotThrow(() => loadAppConfig(join(DEPLOY, 'compose', 'auditline.yaml'), { AUDITLINE_KAFKA__BROKERS: 'kafka-1:9092' }))
  })
})

describe('deploy/kubernetes/*.yaml', () => {
  const files = readdirSync(join(DEPLOY, 'kubernetes')).filter(f => f.endsWith('.yaml')).sort()
  const docs: Array<{ file: string, doc: Obj }> = []
  for (const file of files) {
    for (const d of parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', file), 'utf8'))) {
      assert.equal(d.errors.length, 0, `${file}: ${d.errors.map(e => e.message).join('; ')}`)
      docs.push({ file, doc: obj(d.toJS(), file) })
    }
  }
  const API: Record<string, string> = { Namespace: 'v1', ConfigMap: 'v1', Service: 'v1', Deployment: 'apps/v1', StatefulSet: 'apps/v1', DaemonSet: 'apps/v1', Job: 'batch/v1' }

  it('parses, and every object has a known kind with its apiVersion, a name and the auditline namespace', () => {
    assert.ok(docs.length >= 8)
    for (const { file, doc } of docs) {
      const kind = String(doc.kind)
      assert.equal(doc.apiVersion, API[kind], `${file}: apiVersion of ${kind}`)
      const meta = obj(doc.metadata, `${file}.metadata`)
      assert.match(String(meta.name), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      if (kind !== 'Namespace') assert.equal(meta.namespace, 'auditline', `${file}: namespace`)
    }
    const kinds = docs.map(d => `${String(d.doc.kind)}/${String(obj(d.doc.metadata, 'metadata').name)}`)
    for (const k of ['StatefulSet/auditline-indexer', 'Deployment/auditline-anonymizer', 'Deployment/auditline-stats', 'StatefulSet/auditline-query-api', 'DaemonSet/auditline-collector', 'Job/auditline-init']) {
      assert.ok(kinds.includes(k), `${k} is defined`)
    }
  })

  it('gives every workload a matching selector, a known command, probes on declared ports, mounted volumes and valid AUDITLINE_* variables', () => {
    for (const { file, doc } of docs.filter(d => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(String(d.doc.kind)))) {
      const spec = obj(doc.spec, `${file}.spec`)
      const tpl = obj(spec.template, `${file}.template`)
      const labels = obj(obj(tpl.metadata, 'template.metadata').labels, 'template labels')
      if (doc.kind !== 'Job') {
        for (const [k, v] of Object.entries(obj(obj(spec.selector, 'selector').matchLabels, 'matchLabels'))) assert.equal(labels[k], v, `${file}: selector ${k}`)
      }
      const pod = obj(tpl.spec, `${file}.pod`)
      const volumes = new Set([
        ...arr(pod.volumes, `${file}.volumes`).map(v => obj(v, 'volume').name),
        ...(Array.isArray(spec.volumeClaimTemplates) ? spec.volumeClaimTemplates.map(v => obj(obj(v, 'claim').metadata, 'claim.metadata').name) : [])
      ])
      for (const c of arr(pod.containers, `${file}.containers`).map(c => obj(c, 'container'))) {
        assert.match(String(c.image), /auditline:/)
        const args = arr(c.args, `${file}.args`)
        assert.ok(COMMANDS.has(String(args[0])), `${file}: command ${String(args[0])}`)
        assert.deepEqual(args.slice(1), ['--config', '/etc/auditline/auditline.yaml'])
        const ports = new Set((Array.isArray(c.ports) ? c.ports : []).map(p => obj(p, 'port').name))
        for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
          if (c[probe] === undefined) continue
          const get = obj(obj(c[probe], probe).httpGet, `${probe}.httpGet`)
          assert.ok(ports.has(get.port), `${file}: ${probe} port ${String(get.port)} is declared`)
          assert.ok(['/healthz', '/readyz'].includes(String(get.path)))
        }
        if (doc.kind !== 'Job') assert.equal(obj(obj(c.readinessProbe, 'readinessProbe').httpGet, 'httpGet').path, '/readyz', `${file}: readiness uses /readyz`)
        for (const m of arr(c.volumeMounts, `${file}.volumeMounts`)) assert.ok(volumes.has(obj(m, 'mount').name), `${file}: volume ${String(obj(m, 'mount').name)} exists`)
        const env: Record<string, string> = {}
        for (const e of Array.isArray(c.env) ? c.env : []) {
          const { name, value, valueFrom } = obj(e, 'env') as { name: string, value?: string, valueFrom?: unknown }
          env[name] = value ?? (valueFrom === undefined ? '' : 'pod-name')
        }
        checkEnv(env, `${file}: env`)
      }
      if (doc.kind !== 'Job') assert.ok(Number(pod.terminationGracePeriodSeconds) > 10, `${file}: grace period above the 10 s shutdown budget`)
    }
  })

  it('ships an auditline.yaml in the ConfigMap that the configuration schema accepts, with TLS and SCRAM set', () => {
    const cm = docs.find(d => d.doc.kind === 'ConfigMap')
    assert.ok(cm !== undefined)
    const text = String(obj(cm.doc.data, 'data')['auditline.yaml'])
    const dir = mkdtempSync(join(tmpdir(), 'auditline-k8s-'))
    try {
      writeFileSync(join(dir, 'auditline.yaml'), text)
      const cfg = loadAppConfig(join(dir, 'auditline.yaml'), {})
      assert.equal(cfg.kafka.replicationFactor, 3)
      assert.equal(cfg.kafka.ssl?.enabled, true)
      assert.equal(cfg.kafka.sasl?.mechanism, 'scram-sha-512')
      assert.equal(cfg.kafka.sasl?.password, undefined, 'no secret in the ConfigMap')
      assert.ok(cfg.queryApi.tls !== undefined)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('deploy/systemd and deploy/kafka', () => {
  const units = readdirSync(join(DEPLOY, 'systemd')).filter(f => f.endsWith('.service'))

  it('has a unit per stage that starts a known auditline command and stops it with SIGTERM', () => {
    assert.ok(units.includes('auditline-collect.service'))
    for (const u of units) {
      const text = readFileSync(join(DEPLOY, 'systemd', u), 'utf8')
      const exec = /^ExecStart=.*auditline\.js (\S+) --config \S+$/m.exec(text)
      assert.ok(exec !== null && COMMANDS.has(exec[1] ?? ''), `${u}: ExecStart`)
      assert.match(text, /^KillSignal=SIGTERM$/m)
      assert.match(text, /^TimeoutStopSec=(\d+)$/m)
      assert.ok(Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1]) > 10)
    }
  })

  it('passes systemd-analyze verify (when systemd is installed)', function () {
    const tool = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find(existsSync)
    if (tool === undefined) { this.skip(); return }
    this.timeout(30_000)
    // Non-zero exit (and stderr) on unknown keys, bad sections or a missing executable.
    execFileSync(tool, ['verify', ...units.map(u => join(DEPLOY, 'systemd', u))], { stdio: 'pipe' })
  })

  it('creates every catalog topic in topics.sh with the catalog retention, replication factor 3 and min.insync.replicas=2', () => {
    const script = readFileSync(join(DEPLOY, 'kafka', 'topics.sh'), 'utf8')
    assert.match(script, /--replication-factor 3/)
    assert.match(script, /min\.insync\.replicas=2/)
    const DAY = 86_400_000
    const lines = [...script.matchAll(/^topic (\S+) (\d+) (\$\(\(\d+ \* DAY\)\)|\d+)(.*)$/gm)]
    for (const spec of Object.values(TOPICS)) {
      const l = lines.find(m => m[1] === spec.name)
      assert.ok(l !== undefined, `${spec.name} in topics.sh`)
      assert.equal(Number(l[2]), spec.partitions, `${spec.name} partitions`)
      const ret = /^\$\(\((\d+) \* DAY\)\)$/.exec(l[3] ?? '')
      assert.equal(ret === null ? Number(l[3]) : Number(ret[1]) * DAY, spec.retentionMs, `${spec.name} retention`)
      for (const [k, v] of Object.entries(spec.configs ?? {})) assert.ok((l[4] ?? '').includes(`${k}=${v}`), `${spec.name} ${k}`)
    }
    assert.equal(lines.length, Object.keys(TOPICS).length)
  })
})
