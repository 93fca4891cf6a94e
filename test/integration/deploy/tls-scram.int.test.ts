import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { createEsClient } from '../../../lib/elasticsearch.ts'
import { createKafka } from '../../../lib/kafka.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect, startIndex } from '../../../cli/pipeline.ts'
import type { Running } from '../../../lib/component.ts'
import { startSecureKafka, type SecureKafka } from '../../../deploy/local/kafka-secure.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'

describe('transport security: collectors and indexer over a SASL_SSL (TLS + SCRAM-SHA-512) listener', function () {
  this.timeout(120_000)
  let dir: string
  let broker: SecureKafka | undefined
  const running: Running[] = []
  const password = randomBytes(18).toString('base64url')
  const logged: string[] = []
  const log = createLogger({ level: 'info', destination: new Writable({ write (c, _e, cb) { logged.push(String(c)); cb() } }) })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-tls-scram-'))
    broker = await startSecureKafka({ workDir: join(dir, 'kafka'), users: [{ name: 'auditline', password }] })
  })
  after(async () => {
    for (const r of running.reverse()) await r.close().catch(() => undefined)
    await broker?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  function secureKafka (pw: string | undefined): Record<string, unknown> {
    const b = broker as SecureKafka
    return {
      brokers: [`127.0.0.1:${b.saslSslPort}`],
      ssl: { enabled: true, caFile: b.caFile },
      ...(pw === undefined ? {} : { sasl: { mechanism: 'scram-sha-512', username: 'auditline', password: pw } })
    }
  }

  it('delivers an sshd event through collector → Kafka (TLS + SCRAM) → indexer → Elasticsearch', async () => {
    const authLog = join(dir, 'auth.log')
    await writeFile(authLog, '')
    const { topicPrefix, indexPrefix } = uniquePrefix()
    // The password comes the way production passes it: from the environment, not the config file.
    const cfg = loadAppConfig(undefined, { AUDITLINE_KAFKA__SASL__PASSWORD: password }, {
      kafka: { ...secureKafka(undefined), sasl: { mechanism: 'scram-sha-512', username: 'auditline' }, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints'), host: 'collector-tls', pollMs: 50, sources: [{ name: 'auth', type: 'sshd', paths: [authLog] }] },
      indexer: { groupId: `${topicPrefix}indexer` }
    })
    const ctx = { log, signal: new AbortController().signal, metrics: new Registry() }
    await init(cfg, ctx)
    running.push(await startIndex(cfg, ctx))
    running.push(await startCollect(cfg, ctx))

    await appendFile(authLog, '2026-11-28T03:49:07.123456+00:00 backend-7 sshd[4242]: Accepted password for tls-anna from 198.51.100.23 port 52814 ssh2\n')

    const es = createEsClient(cfg.elasticsearch)
    try {
      const hits = await waitFor('the event in Elasticsearch', async () => {
        await es.indices.refresh({ index: `${indexPrefix}-*` }).catch(() => undefined)
        const res = await es.search({ index: `${indexPrefix}-*`, query: { term: { 'user.name': 'tls-anna' } } }).catch(() => undefined)
        const h = res?.hits.hits ?? []
        return h.length > 0 ? h : undefined
      }, 60_000, 500)
      assert.equal(hits.length, 1)
    } finally {
      await es.close()
    }
    // The password must never reach the service log.
    assert.equal(logged.some(l => l.includes(password)), false)
  })

  it('refuses a client that speaks TLS but brings no SASL credentials', async () => {
    const b = broker as SecureKafka
    const { readFile } = await import('node:fs/promises')
    const kafka = new Kafka({
      clientId: 'no-credentials',
      brokers: [`127.0.0.1:${b.saslSslPort}`],
      ssl: { ca: [await readFile(b.caFile, 'utf8')] },
      connectionTimeout: 3_000,
      requestTimeout: 5_000,
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING
    })
    const admin = kafka.admin()
    try {
      // Without a SASL handshake the broker closes the connection on the first request.
      await assert.rejects(async () => { await admin.connect(); await admin.listTopics() }, (err: Error) => {
        assert.match(`${err.name}: ${err.message}`, /KafkaJS(Connection|NumberOfRetriesExceeded|Protocol)Error|Closed connection|Connection (error|closed)/i)
        return true
      })
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  })

  it('refuses a client with a wrong SCRAM password (authentication error)', async () => {
    const cfg = loadAppConfig(undefined, {}, { kafka: { ...secureKafka('not-the-password'), connectionTimeoutMs: 3_000 } })
    const admin = createKafka(cfg.kafka, log).admin()
    try {
      await assert.rejects(async () => { await admin.connect() }, (err: Error) => {
        assert.equal(err.name, 'KafkaJSSASLAuthenticationError')
        assert.match(err.message, /SCRAM.*(invalid credentials|authentication failed)/i)
        return true
      })
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  })

  it('refuses a plaintext client on the SASL_SSL listener', async () => {
    const b = broker as SecureKafka
    const kafka = new Kafka({ clientId: 'plaintext', brokers: [`127.0.0.1:${b.saslSslPort}`], connectionTimeout: 3_000, requestTimeout: 5_000, retry: { retries: 0 }, logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    try {
      await assert.rejects(async () => { await admin.connect(); await admin.listTopics() })
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  })
})
