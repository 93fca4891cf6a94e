import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { init, startCollect } from '../../../cli/pipeline.ts'
import { parseFile } from '../../../cli/parse-file.ts'
import type { AuditEvent } from '../../../lib/ecs.ts'
import { topicName } from '../../../lib/topics.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { consumeUntil, values } from '../../helpers/kafka.ts'
import { INVALID_USER, SSH_USER, runSshScenario, startSshLab, type SshLab } from '../../helpers/sshd.ts'

/**
 * Debian's real sshd (two instances: syslog → real rsyslogd writing three file formats, and `-E FILE`),
 * real logins over IPv4 and IPv6, and the collector (`init` + `startCollect`) following all four files
 * into a real Kafka broker.
 */
describe('sshd collector against the real openssh-server and rsyslogd', function () {
  this.timeout(90_000)
  let dir: string
  let lab: SshLab | undefined
  let collect: Awaited<ReturnType<typeof startCollect>> | undefined

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-sshd-int-'))
    lab = await startSshLab(dir)
  })
  after(async () => {
    await collect?.close()
    await lab?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('puts every login, failure, invalid user, disconnect and sudo into audit.sshd.v1 with user, source IP, action and outcome', async () => {
    const l = lab as SshLab
    const { topicPrefix, indexPrefix } = uniquePrefix()
    const sources = [
      { name: 'auth-rfc3339', type: 'sshd', format: 'syslog', paths: [l.logs.rfc3339] },
      { name: 'auth-rfc3164', type: 'sshd', format: 'syslog', paths: [l.logs.rfc3164] },
      { name: 'auth-rfc5424', type: 'sshd', format: 'syslog', paths: [l.logs.rfc5424] },
      { name: 'sshd-e', type: 'sshd', format: 'sshd-e', paths: [l.logs.sshdE] }
    ]
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'warn' },
      kafka: { brokers: stack().brokers, topicPrefix },
      elasticsearch: { url: stack().esUrl, indexPrefix },
      ingest: { checkpointDir: join(dir, 'checkpoints'), host: 'collector-1', pollMs: 50, sources }
    })
    const ctx = { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }
    await init(cfg, ctx)
    collect = await startCollect(cfg, ctx)

    await runSshScenario(l)
    // rsyslogd and sshd write asynchronously: wait for the scenario's last lines, then for the collector.
    await l.waitForLine(l.logs.rfc5424, /Connection closed by authenticating user .* \[preauth\]/)
    await l.waitForLine(l.logs.rfc3164, new RegExp(`Connection closed by invalid user ${INVALID_USER}`))
    await l.waitForLine(l.logs.sshdE, new RegExp(`Connection closed by invalid user ${INVALID_USER}`))
    await l.waitForLine(l.logs.rfc3339, /sudo: +root : TTY=/)
    await collect.drained()

    const topic = topicName(topicPrefix, 'sshd')
    const deadTopic = topicName(topicPrefix, 'deadletter')
    // How many events the files hold, by the same line handling without Kafka (`auditline parse`).
    let expected = 0
    for (const s of sources) {
      const summary = await parseFile(s.paths[0] as string, 'sshd', s.format, 'collector-1', { event: () => {}, dead: () => {} })
      assert.equal(summary.deadLetters, 0, `${s.name}: dead letters`)
      expected += summary.events
    }
    const msgs = await consumeUntil([topic, deadTopic], all => all.length >= expected, 30_000)
    assert.deepEqual(values(msgs.filter(c => c.topic === deadTopic)), [], 'no line became a dead letter')
    const events = values<AuditEvent>(msgs.filter(c => c.topic === topic))
    assert.equal(events.length, expected, 'every event arrived, once')

    for (const s of sources) {
      const stream = `collector-1/${s.name}`
      const evs = events.filter(e => e.auditline.stream === stream)
      const find = (what: string, p: (e: AuditEvent) => boolean): AuditEvent => {
        const e = evs.find(p)
        assert.ok(e !== undefined, `${stream}: no ${what}`)
        return e
      }
      // Sequence numbers of a stream are gap-free and each position arrived once.
      assert.deepEqual(evs.map(e => e.event.sequence).sort((a, b) => a - b), evs.map((_, i) => i), `${stream}: sequence`)
      assert.equal(new Set(evs.map(e => e.event.id)).size, evs.length)

      for (const ip of ['127.0.0.1', '::1']) {
        for (const method of ['password', 'publickey', 'keyboard-interactive/pam']) {
          const e = find(`${method} login from ${ip}`, e => e.event.action === 'ssh_login' && e.event.outcome === 'success' && e.ssh?.method === method && e.source?.ip === ip)
          assert.equal(e.user?.name, SSH_USER)
          assert.deepEqual(e.event.category, ['authentication', 'session'])
          assert.ok(e.related?.ip?.includes(ip))
          if (method === 'publickey') {
            assert.equal(e.ssh?.key_type, 'ED25519')
            assert.match(String(e.ssh?.fingerprint), /^SHA256:/)
          }
        }
        find(`session end from ${ip}`, e => e.event.action === 'ssh_disconnect' && e.user?.name === SSH_USER && e.source?.ip === ip)
      }
      const wrongPassword = find('failed password', e => e.event.action === 'ssh_login' && e.event.outcome === 'failure' && e.ssh?.method === 'password' && e.user?.name === SSH_USER)
      assert.equal(wrongPassword.source?.ip, s.name === 'sshd-e' ? '::1' : '127.0.0.1')
      const invalid = find('invalid user', e => e.event.action === 'ssh_invalid_user')
      assert.equal(invalid.user?.name, INVALID_USER)
      assert.equal(invalid.event.outcome, 'failure')
      assert.equal(invalid.source?.ip, s.name === 'sshd-e' ? '127.0.0.1' : '::1')
      find('failed password of the invalid user', e => e.event.action === 'ssh_login' && e.event.outcome === 'failure' && e.ssh?.invalid_user === true)
      assert.equal(evs.filter(e => e.event.action === 'ssh_login' && e.ssh?.method === 'publickey' && e.event.outcome === 'failure').length, 3, `${stream}: refused keys`)
      find('attempts exceeded', e => e.event.action === 'ssh_login_attempts_exceeded' && e.user?.name === SSH_USER)
      find('pre-auth disconnect', e => e.event.action === 'ssh_disconnect_preauth')

      if (s.name === 'sshd-e') {
        // `-E` lines carry no time: @timestamp is when the collector read them, so it is recent.
        assert.ok(evs.every(e => Date.now() - Date.parse(e['@timestamp']) < 120_000))
        assert.equal(evs.filter(e => e.event.module === 'sudo').length, 0)
      } else {
        assert.equal(find('syslog host', e => e.host?.hostname !== undefined).host?.name, 'collector-1')
        find('PAM session open', e => e.event.action === 'ssh_session_open' && e.user?.name === SSH_USER)
        const refused = evs.filter(e => e.event.action === 'sudo_command' && e.event.outcome === 'failure')
        assert.equal(refused.length, 2, `${stream}: refused sudo`)
        assert.ok(refused.every(e => e.user?.name === SSH_USER && e.user.effective?.name === 'root'))
        const ran = evs.filter(e => e.event.action === 'sudo_command' && e.event.outcome === 'success')
        assert.equal(ran.length, 2, `${stream}: sudo run by root`)
        assert.ok(ran.every(e => e.user?.name === 'root' && e.user.effective?.name === SSH_USER))
      }
    }
  })
})
