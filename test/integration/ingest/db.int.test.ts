import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect } from '../../../cli/pipeline.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { TOPICS, topicName, type TopicKey } from '../../../lib/topics.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { consumeUntil, values, type Consumed } from '../../helpers/kafka.ts'
import { CANARY, runMariadbScenario, runPostgresScenario, startDbServers, waitForLine, type MariadbServer, type PgServer } from '../../helpers/db-servers.ts'

const HOST = 'db-host-1'
const PG_STREAMS = ['pg-stderr', 'pg-csv', 'pg-json'] as const

function quietCtx (): { log: ReturnType<typeof createLogger>, signal: AbortSignal, metrics: Registry } {
  return { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }
}

describe('database collectors against real PostgreSQL 15 and MariaDB servers', function () {
  this.timeout(90_000)
  let dir: string
  let servers: { pg: PgServer, maria: MariadbServer } | undefined
  let collector: Awaited<ReturnType<typeof startCollect>> | undefined
  const { topicPrefix, indexPrefix } = uniquePrefix()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-db-int-'))
    servers = await startDbServers(dir)
    const { pg, maria } = servers
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'warn' },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: {
        checkpointDir: join(dir, 'checkpoints'),
        host: HOST,
        pollMs: 50,
        sources: [
          { name: 'mariadb', type: 'mariadb-audit', paths: [maria.auditLog], options: { timezone: 'UTC' } },
          { name: 'pg-stderr', type: 'postgresql', format: 'stderr', paths: [pg.logs.stderr], options: { logLinePrefix: pg.logLinePrefix } },
          { name: 'pg-csv', type: 'postgresql', format: 'csvlog', paths: [pg.logs.csvlog] },
          { name: 'pg-json', type: 'postgresql', format: 'jsonlog', paths: [pg.logs.jsonlog] }
        ]
      }
    })
    await init(cfg, quietCtx())
    collector = await startCollect(cfg, quietCtx())
  })

  after(async () => {
    // Stop everything even when a step failed; servers first so that nothing is left running.
    await Promise.allSettled([servers?.pg.stop(), servers?.maria.stop()])
    await collector?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('delivers logins, failed logins and DDL/DCL of both servers to audit.db.v1 with user, client IP, action, object and outcome — and the password nowhere', async () => {
    const { pg, maria } = servers as { pg: PgServer, maria: MariadbServer }
    await Promise.all([runPostgresScenario(pg), runMariadbScenario(maria)])
    await waitForLine(pg.logs.jsonlog, /statement: DROP DATABASE shop[\s\S]*disconnection: [^\n]*host=127\.0\.0\.1/)
    await waitForLine(maria.auditLog, /'DROP DATABASE shop',0\n[^\n]*,admin,127\.0\.0\.1,\d+,0,DISCONNECT/)
    await (collector as NonNullable<typeof collector>).drained()

    // Every topic of the catalog: the canary must be in none of them.
    const all = (Object.keys(TOPICS) as TopicKey[]).map(k => topicName(topicPrefix, k))
    const dbTopic = topicName(topicPrefix, 'db')
    const streamsDone = (msgs: Consumed[]): boolean => {
      const evs = values<AuditEvent>(msgs.filter(m => m.topic === dbTopic))
      return ['mariadb', ...PG_STREAMS].every(s => evs.some(e => e.auditline.stream === `${HOST}/${s}` && e.event.action === 'db_drop_database' && e.db?.object === 'shop'))
    }
    const msgs = await consumeUntil(all, streamsDone, 45_000)
    assert.ok(streamsDone(msgs), 'every stream delivered its DROP DATABASE shop')

    for (const m of msgs) {
      const text = m.message.value?.toString('utf8') ?? ''
      assert.ok(!text.includes(CANARY) && !text.includes('S3cret'), `canary password in ${m.topic}: ${text}`)
    }
    const dead = msgs.filter(m => m.topic === topicName(topicPrefix, 'deadletter'))
    assert.equal(dead.length, 0, `dead letters: ${dead.map(d => d.message.value?.toString()).join('\n')}`)
    const events = values<AuditEvent>(msgs.filter(m => m.topic === dbTopic))
    for (const e of events) assert.equal(e.event.original, undefined)

    const of = (stream: string): AuditEvent[] => events.filter(e => e.auditline.stream === `${HOST}/${stream}`)
    const has = (evs: AuditEvent[], what: string, pred: (e: AuditEvent) => boolean): AuditEvent => {
      const e = evs.find(pred)
      assert.ok(e !== undefined, `${what} not found among ${evs.length} events`)
      return e
    }

    for (const stream of PG_STREAMS) {
      const evs = of(stream)
      const at = `[${stream}] `
      has(evs, at + 'postgres login over IPv4', e => e.event.action === 'db_connect' && e.event.outcome === 'success' && e.user?.name === 'postgres' && e.source?.ip === '127.0.0.1')
      has(evs, at + 'app_rw login over IPv6', e => e.event.action === 'db_connect' && e.event.outcome === 'success' && e.user?.name === 'app_rw' && e.source?.ip === '::1')
      const failed = has(evs, at + 'wrong password', e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'app_rw' && e.source?.ip === '127.0.0.1')
      assert.deepEqual(failed.event.category, ['authentication'])
      has(evs, at + 'socket login without IP', e => e.event.action === 'db_connect' && e.source?.address === '[local]' && e.source.ip === undefined)
      const create = has(evs, at + 'CREATE DATABASE shop', e => e.event.action === 'db_create_database' && e.db?.object === 'shop')
      assert.equal(create.user?.name, 'postgres')
      assert.equal(create.source?.ip, '127.0.0.1')
      assert.equal(create.event.outcome, 'unknown')
      has(evs, at + 'CREATE TABLE orders from ::1', e => e.event.action === 'db_create_table' && e.db?.object === 'orders' && e.db.name === 'shop' && e.source?.ip === '::1')
      has(evs, at + 'ALTER TABLE orders', e => e.event.action === 'db_alter_table' && e.db?.object === 'orders')
      has(evs, at + 'DROP TABLE orders', e => e.event.action === 'db_drop_table' && e.db?.object === 'orders')
      const role = has(evs, at + 'CREATE ROLE app_rw', e => e.event.action === 'db_create_role' && e.user?.target?.name === 'app_rw' && e.event.outcome === 'unknown')
      assert.equal(role.db?.statement, "CREATE ROLE app_rw LOGIN PASSWORD '*****';")
      has(evs, at + 'failed CREATE ROLE', e => e.event.action === 'db_create_role' && e.event.outcome === 'failure' && e.event.reason === 'role "app_rw" already exists')
      has(evs, at + 'GRANT', e => e.event.action === 'db_grant' && e.user?.target?.name === 'app_rw' && e.db?.object === 'orders')
      has(evs, at + 'REVOKE', e => e.event.action === 'db_revoke' && e.user?.target?.name === 'app_rw')
      has(evs, at + 'DROP DATABASE shop', e => e.event.action === 'db_drop_database' && e.db?.object === 'shop' && e.user?.name === 'postgres' && e.source?.ip === '127.0.0.1')
    }

    const m = of('mariadb')
    has(m, '[mariadb] admin login over IPv4', e => e.event.action === 'db_connect' && e.event.outcome === 'success' && e.user?.name === 'admin' && e.source?.ip === '127.0.0.1')
    has(m, '[mariadb] app_rw login over IPv6', e => e.event.action === 'db_connect' && e.event.outcome === 'success' && e.user?.name === 'app_rw' && e.source?.ip === '::1')
    const mf = has(m, '[mariadb] wrong password', e => e.event.action === 'db_connect' && e.event.outcome === 'failure' && e.user?.name === 'app_rw' && e.source?.ip === '127.0.0.1')
    assert.equal(mf.db?.error_code, '1045')
    assert.deepEqual(mf.event.category, ['authentication'])
    const mc = has(m, '[mariadb] CREATE DATABASE shop', e => e.event.action === 'db_create_database' && e.db?.object === 'shop')
    assert.equal(mc.user?.name, 'admin')
    assert.equal(mc.source?.ip, '127.0.0.1')
    assert.equal(mc.event.outcome, 'success')
    has(m, '[mariadb] CREATE TABLE orders from ::1', e => e.event.action === 'db_create_table' && e.db?.object === 'orders' && e.db.name === 'shop' && e.source?.ip === '::1')
    has(m, '[mariadb] ALTER TABLE', e => e.event.action === 'db_alter_table' && e.db?.object === 'orders')
    has(m, '[mariadb] DROP TABLE', e => e.event.action === 'db_drop_table' && e.db?.object === 'orders')
    has(m, '[mariadb] CREATE USER app_rw', e => e.event.action === 'db_create_user' && e.user?.target?.name === 'app_rw' && e.event.outcome === 'success')
    has(m, '[mariadb] failed CREATE USER', e => e.event.action === 'db_create_user' && e.event.outcome === 'failure' && e.db?.error_code === '1396')
    has(m, '[mariadb] GRANT', e => e.event.action === 'db_grant' && e.db?.object === 'shop.orders' && e.user?.target?.name === 'app_rw')
    has(m, '[mariadb] REVOKE', e => e.event.action === 'db_revoke' && e.db?.object === 'shop.orders')
    has(m, '[mariadb] DROP DATABASE shop', e => e.event.action === 'db_drop_database' && e.db?.object === 'shop' && e.event.outcome === 'success' && e.source?.ip === '127.0.0.1')
    has(m, '[mariadb] socket login as localhost', e => e.event.action === 'db_connect' && e.user?.name === 'root' && e.source?.address === 'localhost' && e.source.ip === undefined)

    // Sequence numbers of each stream are gap-free from 0.
    for (const s of ['mariadb', ...PG_STREAMS]) {
      const seqs = of(s).map(e => e.event.sequence).sort((a, b) => a - b)
      assert.deepEqual(seqs, seqs.map((_, i) => i), `gap-free sequence in ${s}`)
    }
  })
})
