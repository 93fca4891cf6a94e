import assert from 'node:assert/strict'
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { createKey } from '../../../lib/apikey.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { startAll } from '../../../cli/pipeline.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { stack, uniquePrefix, waitFor } from '../../helpers/stack.ts'

describe('walking skeleton: sshd line → collector → Kafka → indexer → Elasticsearch → query API', function () {
  this.timeout(120_000)
  let dir: string
  let running: Awaited<ReturnType<typeof startAll>> | undefined
  const logged: string[] = []

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-skeleton-')) })
  after(async () => {
    await running?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('returns the accepted login as an ECS event from GET /v1/events?user.name=…', async () => {
    const authLog = join(dir, 'auth.log')
    await writeFile(authLog, '')
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const key = await createKey()
    const cfg = loadAppConfig(undefined, {}, {
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints'), host: 'collector-1', pollMs: 50, sources: [{ name: 'auth', type: 'sshd', paths: [authLog] }] },
      indexer: { groupId: `${topicPrefix}indexer` },
      queryApi: { port: 0, apiKeys: [{ id: key.id, hash: key.hash, roles: ['security'], owner: 'test' }] }
    })
    const log = createLogger({ level: 'info', destination: new Writable({ write (c, _e, cb) { logged.push(String(c)); cb() } }) })
    running = await startAll(cfg, { log, signal: new AbortController().signal, metrics: new Registry() })

    // Debian 12 rsyslog writes RFC 3339 timestamps in auth.log.
    await appendFile(authLog, '2026-11-28T03:49:07.123456+00:00 backend-7 sshd[4242]: Accepted password for deploy-anna from 198.51.100.23 port 52814 ssh2\n')

    const url = `${running.url}/v1/events?user.name=deploy-anna&case=INC-4711`
    const body = await waitFor('the event to be searchable', async () => {
      const res = await fetch(url, { headers: { authorization: `ApiKey ${key.key}` } })
      assert.equal(res.status, 200)
      const page = await res.json() as { events: AuditEvent[], total: number }
      return page.total > 0 ? page : undefined
    }, 60_000, 500)

    assert.equal(body.total, 1)
    const e = body.events[0] as AuditEvent
    assert.equal(e['@timestamp'], '2026-11-28T03:49:07.123Z')
    assert.equal(e.event.action, 'ssh_login')
    assert.equal(e.event.outcome, 'success')
    assert.deepEqual(e.event.category, ['authentication', 'session'])
    assert.equal(e.user?.name, 'deploy-anna')
    assert.equal(e.source?.ip, '198.51.100.23')
    assert.equal(e.source?.port, 52814)
    assert.equal(e.host?.name, 'collector-1')
    assert.equal(e.host?.hostname, 'backend-7')
    assert.equal(e.ssh?.method, 'password')
    assert.equal(e.event.sequence, 0)
    assert.match(e.event.hash ?? '', /^[0-9a-f]{64}$/)
    assert.ok(e.event.ingested !== undefined, 'the indexer sets event.ingested')
    assert.equal(e.auditline.stream, 'collector-1/auth')

    const unauth = await fetch(url)
    assert.equal(unauth.status, 401)
    const bad = await fetch(`${running.url}/v1/events?size=100000&case=INC-4711`, { headers: { authorization: `ApiKey ${key.key}` } })
    assert.equal(bad.status, 400)
    assert.match((await bad.json() as { message: string }).message, /size/)

    const noReason = await fetch(`${running.url}/v1/events?user.name=deploy-anna`, { headers: { authorization: `ApiKey ${key.key}` } })
    assert.equal(noReason.status, 400)
    assert.match((await noReason.json() as { message: string }).message, /reason/)

    // The auditors are audited: the search and the refused requests are audit events themselves.
    const own = await waitFor('the API\'s own audit events', async () => {
      const res = await fetch(`${running?.url ?? ''}/v1/events?class=api&case=INC-4711&size=50`, { headers: { authorization: `ApiKey ${key.key}` } })
      const page = await res.json() as { events: AuditEvent[] }
      const actions = page.events.map(e => `${e.event.action}:${String(e.api?.status)}:${String(e.api?.results)}:${String(e.api?.query).includes('deploy-anna')}`)
      const found = actions.includes('api_search:200:1:true') && actions.some(a => a.startsWith('api_refused:401')) && actions.some(a => a.startsWith('api_refused:400'))
      return found ? page.events : undefined
    }, 30_000, 500)
    // The successful search for the login: its filter, its result count, who asked and for which case.
    const search = own.find(e => e.event.action === 'api_search' && e.api?.results === 1 && String(e.api.query).includes('deploy-anna'))
    assert.ok(search !== undefined, 'the search that found the login is recorded')
    assert.equal(search.user?.name, 'test')
    assert.equal(search.api?.case_id, 'INC-4711')

    // The service log never carries the client address of the login.
    assert.ok(!logged.join('').includes('198.51.100.23'), 'source IP leaked into the service log')
  })
})
