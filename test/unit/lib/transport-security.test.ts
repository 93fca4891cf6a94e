import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { kafkaSecurity } from '../../../lib/kafka.ts'
import { createEsClient } from '../../../lib/elasticsearch.ts'
import { serveMetrics } from '../../../lib/metrics.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { isAuditError } from '../../../lib/errors.ts'

describe('transport security configuration', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-tls-unit-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('gives kafkajs no ssl and no sasl when neither is configured', () => {
    const cfg = loadAppConfig(undefined, {}, { kafka: { brokers: ['127.0.0.1:9092'] } })
    assert.deepEqual(kafkaSecurity(cfg.kafka), {})
  })

  it('reads the CA file and takes the SCRAM password from AUDITLINE_KAFKA__SASL__PASSWORD', async () => {
    const ca = join(dir, 'ca.pem')
    await writeFile(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
    const cfg = loadAppConfig(undefined, { AUDITLINE_KAFKA__SASL__PASSWORD: 'from-env' }, {
      kafka: { brokers: ['k1:9093'], ssl: { enabled: true, caFile: ca }, sasl: { mechanism: 'scram-sha-512', username: 'auditline' } }
    })
    const sec = kafkaSecurity(cfg.kafka)
    assert.deepEqual(sec.sasl, { mechanism: 'scram-sha-512', username: 'auditline', password: 'from-env' })
    assert.equal(typeof sec.ssl, 'object')
    const ssl = sec.ssl as { ca: string[], rejectUnauthorized: boolean }
    assert.equal(ssl.rejectUnauthorized, true, 'certificates are checked by default')
    assert.match(ssl.ca[0] ?? '', /BEGIN CERTIFICATE/)
  })

  it('reads the password from passwordFile without its trailing newline', async () => {
    const pw = join(dir, 'pw')
    await writeFile(pw, 's3cret\n', { mode: 0o600 })
    const cfg = loadAppConfig(undefined, {}, { kafka: { brokers: ['k1:9093'], sasl: { mechanism: 'scram-sha-256', username: 'u', passwordFile: pw } } })
    assert.equal(kafkaSecurity(cfg.kafka).sasl?.mechanism, 'scram-sha-256')
    assert.equal((kafkaSecurity(cfg.kafka).sasl as { password: string }).password, 's3cret')
  })

  it('refuses SASL with neither or both of password and passwordFile, and names no secret in the error', () => {
    const none = loadAppConfig(undefined, {}, { kafka: { brokers: ['k1:9093'], sasl: { mechanism: 'plain', username: 'u' } } })
    assert.throws(() => kafkaSecurity(none.kafka), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    const both = loadAppConfig(undefined, {}, { kafka: { brokers: ['k1:9093'], sasl: { mechanism: 'plain', username: 'u', password: 'hunter2', passwordFile: '/x' } } })
    assert.throws(() => kafkaSecurity(both.kafka), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && !(err as Error).message.includes('hunter2'))
  })

  it('reports an unreadable certificate file as a configuration error naming the field', () => {
    const cfg = loadAppConfig(undefined, {}, { kafka: { brokers: ['k1:9093'], ssl: { enabled: true, caFile: join(dir, 'missing.pem') } } })
    assert.throws(() => kafkaSecurity(cfg.kafka), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /kafka\.ssl\.caFile.*ENOENT/.test((err as Error).message))
  })

  it('requires certFile and keyFile together for mutual TLS', async () => {
    const cert = join(dir, 'client.pem')
    await writeFile(cert, 'x')
    const cfg = loadAppConfig(undefined, {}, { kafka: { brokers: ['k1:9093'], ssl: { enabled: true, certFile: cert } } })
    assert.throws(() => kafkaSecurity(cfg.kafka), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
  })

  it('takes the Elasticsearch API key from apiKeyFile and refuses apiKey and apiKeyFile together', async () => {
    const key = join(dir, 'es-key')
    await writeFile(key, 'aWQ6a2V5\n')
    const ok = loadAppConfig(undefined, {}, { elasticsearch: { url: 'https://es:9200', apiKeyFile: key } })
    const client = createEsClient(ok.elasticsearch)
    await client.close()
    const both = loadAppConfig(undefined, {}, { elasticsearch: { url: 'https://es:9200', apiKey: 'aWQ6a2V5', apiKeyFile: key } })
    assert.throws(() => createEsClient(both.elasticsearch), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    const noCa = loadAppConfig(undefined, {}, { elasticsearch: { url: 'https://es:9200', caFile: join(dir, 'none.pem') } })
    assert.throws(() => createEsClient(noCa.elasticsearch), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && /elasticsearch\.caFile/.test((err as Error).message))
  })
})

describe('metrics server health and readiness', () => {
  it('answers /healthz 200 always and /readyz 200 while ready, 503 once not ready', async () => {
    let ready = true
    const srv = await serveMetrics(new Registry(), '127.0.0.1', 0, { ready: () => ready })
    try {
      const base = srv.url.replace(/\/metrics$/, '')
      assert.equal((await fetch(`${base}/healthz`)).status, 200)
      assert.equal((await fetch(`${base}/readyz`)).status, 200)
      ready = false
      const res = await fetch(`${base}/readyz`)
      assert.equal(res.status, 503)
      assert.deepEqual(await res.json(), { status: 'not ready' })
      assert.equal((await fetch(`${base}/healthz`)).status, 200, 'a stopping stage is still alive')
    } finally {
      await srv.close()
    }
  })
})
