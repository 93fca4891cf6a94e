import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect } from '../../../cli/pipeline.ts'
import { topicName } from '../../../lib/topics.ts'
import { assertWebAccessRecord, type WebAccessRecord } from '../../../ingest/web-access/index.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { runWebScenario, send, startNginx, NGINX_CUSTOM_FORMAT, SITE, type RunningWeb } from '../../helpers/web-servers.ts'

/** Distinct IPv4 clients: Linux routes all of 127.0.0.0/8 to loopback, so a request can come from 127.0.0.2 … */
const CLIENTS = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`)

describe('web-access collector against a real nginx', function () {
  this.timeout(90_000)
  let dir: string
  let nginx: RunningWeb | undefined
  let collect: Awaited<ReturnType<typeof startCollect>> | undefined

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-web-int-'))
    nginx = await startNginx(dir)
  })
  after(async () => {
    await collect?.close()
    await nginx?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('puts every access line into web.access.raw.v1 as a record keyed by client IP, each client on one partition', async () => {
    const web = nginx as RunningWeb
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const sources = [
      { name: 'site-a-combined', type: 'web-access', format: 'combined', paths: [web.logs.combined as string], options: { vhost: SITE } },
      { name: 'site-a-custom', type: 'web-access', format: 'custom', paths: [web.logs.custom as string], options: { logFormat: NGINX_CUSTOM_FORMAT } }
    ]
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'warn' },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints'), host: 'web-1', pollMs: 50, sources }
    })
    const ctx = { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }
    await init(cfg, ctx)
    collect = await startCollect(cfg, ctx)

    let lines = await runWebScenario(web.port)
    for (let round = 0; round < 3; round++) {
      for (const localAddress of CLIENTS) {
        await send(web.port, { host: '127.0.0.1', localAddress, method: 'GET', path: `/page/${round}?from=${localAddress}`, headers: { Host: SITE, 'X-Forwarded-For': '198.51.100.1' } })
        lines++
      }
    }
    await web.waitForLines(web.logs.combined as string, lines)
    await web.waitForLines(web.logs.custom as string, lines)
    await collect.drained()

    const raw = topicName(topicPrefix, 'webRaw')
    const dead = topicName(topicPrefix, 'deadletter')
    const msgs = await consumeUntil([raw, dead], all => all.length >= 2 * lines, 30_000)
    assert.deepEqual(msgs.filter(m => m.topic === dead).map(m => m.message.value?.toString()), [], 'no dead letters')
    assert.equal(msgs.length, 2 * lines, 'every line arrived, once')

    const partitionOf = new Map<string, Set<number>>()
    for (const m of msgs) {
      const key = m.message.key?.toString() ?? ''
      const r = JSON.parse(m.message.value?.toString() ?? '') as WebAccessRecord
      assertWebAccessRecord(r)
      assert.equal(key, r.source.address)
      assert.equal(m.message.headers?.['auditline-record']?.toString(), 'web-access')
      partitionOf.set(key, (partitionOf.get(key) ?? new Set()).add(m.partition))
    }
    assert.deepEqual([...partitionOf.keys()].sort(), ['127.0.0.1', ...CLIENTS, '::1'].sort())
    for (const [key, parts] of partitionOf) assert.equal(parts.size, 1, `client ${key} on partitions ${[...parts].join(', ')}`)
    assert.ok(new Set([...partitionOf.values()].map(p => [...p][0])).size > 1, 'clients spread over more than one partition')

    const records = values<WebAccessRecord>(msgs)
    for (const s of sources) {
      const mine = records.filter(r => r.auditline.stream === `web-1/${s.name}`)
      assert.equal(mine.length, lines)
      assert.deepEqual(mine.map(r => r.event.sequence).sort((a, b) => a - b), mine.map((_, i) => i), `${s.name}: gap-free sequence`)
      assert.equal(new Set(mine.map(r => r.event.id)).size, lines)
      assert.ok(mine.every(r => r.url?.domain === SITE && r.event.original.includes(r.source.address)))
      const v6 = mine.filter(r => r.source.ip === '::1')
      assert.equal(v6.length, 10)
      const search = v6.find(r => r.url?.path === '/search')
      assert.equal(search?.url?.query, 'ip=198.51.100.9&v6=2001:db8::3&q=caf%C3%A9')
      assert.equal(search?.http?.request?.referrer, 'http://[2001:db8::2]:8080/page?from=192.0.2.44')
      assert.equal(search?.http?.request?.x_forwarded_for, s.format === 'custom' ? '203.0.113.7, 2001:db8::1' : undefined)
      assert.equal(mine.filter(r => r.source.ip === '127.0.0.5').length, 3)
    }
  })
})
