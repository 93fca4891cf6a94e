/**
 * Sealed audit events for indexer tests and the indexer bench: built by the collectors' own `finalizeEvent`
 * (id, sequence, hash, schema check), and produced to a real topic with acks=all in chunks under Kafka's limit.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Kafka } from 'kafkajs'
import { finalizeEvent } from '../../ingest/common/finalize.ts'
import type { EventDraft } from '../../ingest/common/parser.ts'
import { createSshdParser } from '../../ingest/sshd/parse.ts'
import { sealEvent, type AuditEvent } from '../../lib/ecs.ts'
import { chunkTopicMessages, createProducer } from '../../lib/kafka.ts'

/** The `i`-th accepted sshd login of one stream (`<host>/auth`), one second apart from `start`. */
export function sshLogin (i: number, opts: { host?: string, start?: string } = {}): AuditEvent {
  const host = opts.host ?? 'indexer-test'
  const t = new Date(Date.parse(opts.start ?? '2026-11-28T00:00:00Z') + i * 1000)
  const draft: EventDraft = {
    '@timestamp': t.toISOString(),
    event: { kind: 'event', category: ['authentication', 'session'], type: ['start'], action: 'ssh_login', outcome: 'success' },
    user: { name: `deploy-${i % 50}` },
    source: { ip: `198.51.100.${i % 250}`, port: 40000 + (i % 20000) },
    process: { name: 'sshd', pid: 4000 + (i % 1000) },
    ssh: { method: 'publickey', key_type: 'ED25519' }
  }
  return finalizeEvent(draft, { host, source: 'auth', fileKey: '2049:131', generation: 0, offset: i * 120, path: '/var/log/auth.log' }, i, 'sshd.auth', 'ssh', t)
}

/** `e` with fields replaced and its hash recomputed: still a valid, correctly hashed event. */
export function resealed (e: AuditEvent, change: (copy: AuditEvent) => void): AuditEvent {
  const copy = structuredClone(e)
  change(copy)
  return sealEvent(copy)
}

/** Produces `events` to `topic` (acks=all), keyed by event id so that they spread over the partitions. */
export async function produceEvents (kafka: Kafka, topic: string, events: readonly AuditEvent[]): Promise<void> {
  const producer = createProducer(kafka)
  await producer.connect()
  try {
    const messages = events.map(e => ({ key: e.event.id, value: JSON.stringify(e) }))
    for (const chunk of chunkTopicMessages([{ topic, messages }])) await producer.sendBatch({ topicMessages: chunk, acks: -1 })
  } finally {
    await producer.disconnect()
  }
}

/** True when the consumer group has committed every partition of `topic` up to its end. */
export async function committedToEnd (kafka: Kafka, groupId: string, topic: string): Promise<boolean> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = await admin.fetchTopicOffsets(topic)
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] })
    return ends.every(p => {
      const c = committed?.partitions.find(x => x.partition === p.partition)?.offset ?? '-1'
      return BigInt(p.high) === 0n || BigInt(c) >= BigInt(p.high)
    })
  } finally {
    await admin.disconnect()
  }
}

/** Messages in `topic` (sum of the partitions' end offsets; the topic is never compacted or trimmed in a test). */
export async function messagesIn (kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const ends = await admin.fetchTopicOffsets(topic)
    return ends.reduce((n, p) => n + Number(BigInt(p.high) - BigInt(p.low)), 0)
  } finally {
    await admin.disconnect()
  }
}

const ROOT = new URL('../../', import.meta.url).pathname

/** Audit events as the sshd collector makes them, from real auth.log lines (Debian 12, RFC 3339 headers). */
export async function fixtureEvents (n: number): Promise<AuditEvent[]> {
  const text = await readFile(join(ROOT, 'test/fixtures/sshd/auth-rfc3339.log'), 'utf8')
  const parser = createSshdParser('syslog')
  const out: AuditEvent[] = []
  let offset = 0
  for (const line of text.split('\n')) {
    const at = offset
    offset += Buffer.byteLength(line) + 1
    if (line === '') continue
    const r = parser.parse(line, { path: '/var/log/auth.log', offset: at, readAt: new Date('2026-11-29T08:00:00Z') })
    if (r.kind !== 'event') continue
    out.push(finalizeEvent(r.event, { host: 'backend-1', source: 'auth', fileKey: '2049:77', generation: 0, offset: at, path: '/var/log/auth.log' }, out.length, parser.dataset, parser.eventClass, new Date('2026-11-29T08:00:00Z')))
    if (out.length === n) break
  }
  assert.equal(out.length, n, 'the fixture holds enough events')
  return out
}
