import assert from 'node:assert/strict'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Tailer } from '../../../ingest/common/tail.ts'
import { emptyCheckpoint } from '../../../ingest/common/checkpoint.ts'
import { processLine } from '../../../ingest/common/collector.ts'
import { createSshdParser } from '../../../ingest/sshd/parse.ts'

const GOOD = '2026-11-28T03:49:07.123456+00:00 backend-7 sshd[4242]: Accepted password for anna from 198.51.100.23 port 52814 ssh2'

describe('collector line handling: bad input becomes a dead letter, never a crash or a silent drop', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-collector-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  async function outcomes (content: Buffer, maxLineBytes = 65536): Promise<ReturnType<typeof processLine>[]> {
    const file = join(dir, `f-${randomBytes(4).toString('hex')}.log`)
    await writeFile(file, content)
    const t = new Tailer({ paths: [file], maxLineBytes }, emptyCheckpoint())
    await t.refresh()
    const lines = await t.read(1000, 1 << 24)
    await t.close()
    const parser = createSshdParser('syslog')
    return lines.map((l, i) => processLine(l, parser, { host: 'h', source: 's' }, i, new Date('2026-11-28T04:00:00Z')))
  }

  it('keeps a non-UTF-8 line as a base64 dead letter with its position and goes on', async () => {
    const bad = Buffer.from([0x32, 0x30, 0xff, 0xfe, 0x80, 0x0a])
    const out = await outcomes(Buffer.concat([bad, Buffer.from(GOOD + '\n')]))
    assert.equal(out.length, 2)
    const d = out[0]
    assert.ok(d !== undefined && 'dead' in d)
    assert.equal(d.dead.code, 'AUD_ERR_INGEST_PARSE')
    assert.match(d.dead.reason, /UTF-8/)
    assert.equal(d.dead.original_encoding, 'base64')
    assert.deepEqual(Buffer.from(d.dead.original ?? '', 'base64'), bad.subarray(0, 5))
    assert.equal(d.dead.source.offset, 0)
    assert.equal(d.dead.sequence, 0)
    assert.ok(out[1] !== undefined && 'event' in out[1])
  })

  it('cuts a 1 MiB line to the maximum, dead-letters it and reads the next line', async () => {
    const long = 'A'.repeat(1024 * 1024)
    const out = await outcomes(Buffer.from(`${long}\n${GOOD}\n`))
    assert.equal(out.length, 2)
    const d = out[0]
    assert.ok(d !== undefined && 'dead' in d)
    assert.equal(d.dead.code, 'AUD_ERR_INGEST_LINE_TOO_LONG')
    assert.equal(d.dead.original_length, 1024 * 1024)
    assert.equal(d.dead.original?.length, 65536)
    assert.ok(out[1] !== undefined && 'event' in out[1])
  })

  it('turns binary garbage into dead letters without throwing', async () => {
    const garbage = randomBytes(64 * 1024)
    const out = await outcomes(Buffer.concat([garbage, Buffer.from('\n' + GOOD + '\n')]))
    assert.ok(out.length >= 2)
    const events = out.filter(o => 'event' in o)
    assert.equal(events.length, 1, 'the good line after the garbage is still an event')
    for (const o of out.slice(0, -1)) assert.ok('dead' in o || 'skip' in o)
    assert.ok(out.some(o => 'dead' in o), 'garbage is not dropped silently')
  })

  it('gives a replayed line the same id, sequence and hash', async () => {
    const a = await outcomes(Buffer.from(GOOD + '\n'))
    const b = await outcomes(Buffer.from(GOOD + '\n'))
    const ea = a[0]
    const eb = b[0]
    assert.ok(ea !== undefined && 'event' in ea && eb !== undefined && 'event' in eb)
    // Different files (inodes) → different ids; the same position in the same file → identical events.
    assert.notEqual(ea.event.event.id, eb.event.event.id)
    const again = processLine({ bytes: Buffer.from(GOOD), truncated: false, length: GOOD.length, path: '/x', fileKey: '1:2', generation: 0, offset: 0 }, createSshdParser(), { host: 'h', source: 's' }, 7, new Date())
    const again2 = processLine({ bytes: Buffer.from(GOOD), truncated: false, length: GOOD.length, path: '/x', fileKey: '1:2', generation: 0, offset: 0 }, createSshdParser(), { host: 'h', source: 's' }, 7, new Date(0))
    assert.ok('event' in again && 'event' in again2)
    assert.deepEqual(again.event, again2.event)
  })
})
