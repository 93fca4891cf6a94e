import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect } from '../../../cli/pipeline.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { topicName } from '../../../lib/topics.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { ensureFtpUser, FTP_HOME, FTP_USER, startProftpd, startPureFtpd, startVsftpd, type RunningFtp } from '../../helpers/ftp-servers.ts'
import { runScenario } from '../../helpers/ftp-scenario.ts'

type Want = Partial<{ action: string, outcome: string, ip: string, path: string, target: string }>

/**
 * Debian's real vsftpd, proftpd and pure-ftpd (the last two unpacked from their .debs), each on its own
 * loopback ports with its own config; real logins (good and bad password), uploads, downloads, renames,
 * chmod, mkdir, rmdir and deletes over IPv4 and IPv6 by test/helpers/ftp-client.ts; the collector
 * (`init` + `startCollect`) following every log file those servers write into a real Kafka broker.
 */
describe('FTP collectors against the real vsftpd, proftpd and pure-ftpd', function () {
  this.timeout(90_000)
  let dir: string
  const servers: RunningFtp[] = []
  let collect: Awaited<ReturnType<typeof startCollect>> | undefined

  before(async () => {
    await ensureFtpUser()
    dir = await mkdtemp(join(tmpdir(), 'auditline-ftp-int-'))
    const start = async (name: string, fn: (d: string) => Promise<RunningFtp>): Promise<RunningFtp> => {
      await mkdir(join(dir, name))
      return await fn(join(dir, name))
    }
    servers.push(...await Promise.all([start('vsftpd', startVsftpd), start('proftpd', d => startProftpd(d)), start('pure-ftpd', startPureFtpd)]))
  })
  after(async () => {
    await collect?.close()
    await Promise.all(servers.map(async s => { await s.stop() }))
    await rm(dir, { recursive: true, force: true })
  })

  it('puts every login and file change of every server into audit.ftp.v1 with user, source IP, action, path and outcome', async () => {
    const [vsftpd, proftpd, pure] = servers as [RunningFtp, RunningFtp, RunningFtp]
    const sources = [
      { name: 'vsftpd-native', type: 'vsftpd', format: 'native', paths: [vsftpd.logs.native as string] },
      { name: 'vsftpd-xferlog', type: 'vsftpd', format: 'xferlog', paths: [vsftpd.logs.xferlog as string] },
      { name: 'proftpd-extended', type: 'proftpd', format: 'extended', paths: [proftpd.logs.extended as string] },
      { name: 'proftpd-systemlog', type: 'proftpd', format: 'syslog', paths: [proftpd.logs.systemlog as string] },
      { name: 'proftpd-xferlog', type: 'proftpd', format: 'xferlog', paths: [proftpd.logs.xferlog as string] },
      { name: 'pure-ftpd-syslog', type: 'pure-ftpd', format: 'syslog', paths: [pure.logs.syslog as string] },
      { name: 'pure-ftpd-stats', type: 'pure-ftpd', format: 'stats', paths: [pure.logs.stats as string] }
    ]
    // vsftpd creates its logs at the first line: make sure the collector finds every file from the start.
    for (const s of sources) await writeFile(s.paths[0] as string, '', { flag: 'a' })
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'warn' },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints'), host: 'collector-1', pollMs: 50, sources }
    })
    const ctx = { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }
    await init(cfg, ctx)
    collect = await startCollect(cfg, ctx)

    // The three servers are independent: drive them at once (their refused passwords each cost seconds).
    // They share the user's home, so each works on names of its own.
    const run = randomBytes(3).toString('hex')
    const tagOf: Record<string, string> = { vsftpd: `v${run}`, proftpd: `p${run}`, 'pure-ftpd': `u${run}` }
    await Promise.all(servers.map(async s => { await runScenario(s, tagOf[s.server] as string) }))

    const abs = (n: string): string => `${FTP_HOME}/${n}`
    const rel = (n: string): string => n
    const logins: Want[] = ['127.0.0.1', '::1'].flatMap(ip => [{ action: 'ftp_login', outcome: 'success', ip }, { action: 'ftp_login', outcome: 'failure', ip }])
    /** What runScenario(server, tag) must have produced, with paths as `p` renders them. */
    const wants = (tag: string, p: (n: string) => string): Record<'transfers' | 'deletes' | 'changes', Want[]> => ({
      transfers: [
        { action: 'ftp_upload', outcome: 'success', ip: '127.0.0.1', path: p(`up-${tag}.txt`) },
        { action: 'ftp_download', outcome: 'success', ip: '127.0.0.1', path: p(`up-${tag}.txt`) },
        { action: 'ftp_upload', outcome: 'success', ip: '::1', path: p(`up6-${tag}.bin`) },
        { action: 'ftp_download', outcome: 'success', ip: '::1', path: p(`up6-${tag}.bin`) }
      ],
      deletes: [
        { action: 'ftp_delete', outcome: 'success', ip: '127.0.0.1', path: p(`renamed-${tag}.txt`) },
        { action: 'ftp_delete', outcome: 'success', ip: '::1', path: p(`renamed6-${tag}.bin`) }
      ],
      changes: [
        { action: 'ftp_rename', outcome: 'success', ip: '127.0.0.1', path: p(`up-${tag}.txt`), target: p(`renamed-${tag}.txt`) },
        { action: 'ftp_rename', outcome: 'success', ip: '::1', path: p(`up6-${tag}.bin`), target: p(`renamed6-${tag}.bin`) },
        { action: 'ftp_chmod', outcome: 'success', ip: '127.0.0.1', path: p(`renamed-${tag}.txt`) },
        { action: 'ftp_mkdir', outcome: 'success', ip: '127.0.0.1', path: p(`dir-${tag}`) },
        { action: 'ftp_rmdir', outcome: 'success', ip: '127.0.0.1', path: p(`dir-${tag}`) },
        { action: 'ftp_mkdir', outcome: 'success', ip: '::1', path: p(`dir6-${tag}`) },
        { action: 'ftp_rmdir', outcome: 'success', ip: '::1', path: p(`dir6-${tag}`) },
        { action: 'ftp_delete', outcome: 'failure', ip: '127.0.0.1', path: p(`missing-${tag}.txt`) }
      ]
    })
    const wVs = wants(tagOf.vsftpd as string, abs)
    const wPro = wants(tagOf.proftpd as string, abs)
    const wPure = wants(tagOf['pure-ftpd'] as string, abs)
    const expected: Record<string, Want[]> = {
      'vsftpd-native': [...logins, ...wVs.transfers, ...wVs.deletes, ...wVs.changes],
      'vsftpd-xferlog': wVs.transfers,
      'proftpd-extended': [...logins, ...wPro.transfers, ...wPro.deletes, ...wPro.changes],
      'proftpd-systemlog': logins,
      'proftpd-xferlog': [...wPro.transfers, ...wPro.deletes],
      // pure-ftpd logs transfers and deletions with absolute paths, the rest as the client sent them.
      'pure-ftpd-syslog': [...logins, ...wPure.transfers, ...wPure.deletes, ...wants(tagOf['pure-ftpd'] as string, rel).changes],
      'pure-ftpd-stats': wPure.transfers
    }
    const matches = (e: AuditEvent, w: Want): boolean =>
      e.event.action === w.action && e.event.outcome === w.outcome && e.source?.ip === w.ip &&
      (w.path === undefined || e.file?.path === w.path) && (w.target === undefined || e.file?.target_path === w.target)
    const missing = (events: AuditEvent[]): string[] => Object.entries(expected).flatMap(([name, list]) => {
      const evs = events.filter(e => e.auditline.stream === `collector-1/${name}`)
      return list.filter(w => !evs.some(e => matches(e, w))).map(w => `${name}: ${JSON.stringify(w)}`)
    })

    const topic = topicName(topicPrefix, 'ftp')
    const deadTopic = topicName(topicPrefix, 'deadletter')
    const msgs = await consumeUntil([topic, deadTopic], all => missing(values<AuditEvent>(all.filter(c => c.topic === topic))).length === 0, 30_000)
    assert.deepEqual(values(msgs.filter(c => c.topic === deadTopic)), [], 'no line became a dead letter')
    const events = values<AuditEvent>(msgs.filter(c => c.topic === topic))
    assert.deepEqual(missing(events), [], 'every expected event arrived')

    for (const e of events) {
      assert.equal(e.auditline.class, 'ftp')
      assert.equal(e.event.module, e.ftp?.server)
      if (e.event.category.includes('file') || e.event.action === 'ftp_login') assert.equal(e.user?.name, FTP_USER, JSON.stringify(e))
      assert.match(e.event.hash ?? '', /^[0-9a-f]{64}$/)
    }
    const login = events.find(e => e.auditline.stream === 'collector-1/proftpd-extended' && e.event.action === 'ftp_login' && e.event.outcome === 'failure')
    assert.deepEqual(login?.event.type, ['start', 'denied'])
    assert.deepEqual(login?.related?.ip, [login?.source?.ip])
  })
})
