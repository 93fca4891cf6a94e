import assert from 'node:assert/strict'
import { mkdtemp, writeFile, appendFile, rename, truncate, copyFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Tailer, type TailLine } from '../../../ingest/common/tail.ts'
import { emptyCheckpoint, type Checkpoint } from '../../../ingest/common/checkpoint.ts'

/** Every line there is now, refreshing before each read as the collector does. */
async function readLines (t: Tailer): Promise<TailLine[]> {
  const out: TailLine[] = []
  for (;;) {
    await t.refresh()
    const lines = await t.read(100, 1 << 20)
    if (lines.length === 0) return out
    out.push(...lines)
  }
}

async function readAll (t: Tailer): Promise<string[]> {
  return (await readLines(t)).map(l => l.bytes.toString('utf8'))
}

function cpOf (t: Tailer, nextSequence = 0): Checkpoint {
  return { version: 1, nextSequence, files: t.positions() }
}

describe('Tailer', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'auditline-tail-'))
    file = join(dir, 'auth.log')
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads complete lines and holds back a partial last line until its newline arrives', async () => {
    await writeFile(file, 'one\ntwo\nthr')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    assert.deepEqual(await readAll(t), ['one', 'two'])
    await appendFile(file, 'ee\n')
    assert.deepEqual(await readAll(t), ['three'])
    await t.close()
  })

  it('resumes from a checkpoint without re-reading acknowledged lines', async () => {
    await writeFile(file, 'a\nb\n')
    const t1 = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    await readAll(t1)
    const cp = cpOf(t1)
    await t1.close()
    await appendFile(file, 'c\n')
    const t2 = new Tailer({ paths: [file], maxLineBytes: 1024 }, cp)
    assert.deepEqual(await readAll(t2), ['c'])
    await t2.close()
  })

  it('waits for a file that appears later', async () => {
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    assert.deepEqual(await readAll(t), [])
    await writeFile(file, 'late\n')
    assert.deepEqual(await readAll(t), ['late'])
    await t.close()
  })

  it('drains the old file after rotation by rename, then follows the new one', async () => {
    await writeFile(file, 'a\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024, rotatedIdleMs: 0 }, emptyCheckpoint())
    assert.deepEqual(await readAll(t), ['a'])
    await appendFile(file, 'b\n')
    await rename(file, `${file}.1`)
    await appendFile(`${file}.1`, 'c-written-after-rename\n')
    await writeFile(file, 'd\n')
    assert.deepEqual(await readAll(t), ['b', 'c-written-after-rename', 'd'])
    await t.close()
  })

  it('finishes a file rotated while the collector was down before reading the new one', async () => {
    await writeFile(file, 'a\n')
    const t1 = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    await readAll(t1)
    const cp = cpOf(t1)
    await t1.close()
    await appendFile(file, 'b\n')
    await rename(file, `${file}.1`)
    await writeFile(file, 'c\n')
    const t2 = new Tailer({ paths: [file], maxLineBytes: 1024, rotatedIdleMs: 0 }, cp)
    assert.deepEqual(await readAll(t2), ['b', 'c'])
    await t2.close()
  })

  it('after copytruncate reads the unread rest from the copy, then the truncated file at a new generation', async () => {
    await writeFile(file, 'a\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    assert.deepEqual(await readAll(t), ['a'])
    await appendFile(file, 'b-unread\n')
    await copyFile(file, `${file}.1`)
    await truncate(file, 0)
    await appendFile(file, 'c\n')
    const lines = await readLines(t)
    assert.deepEqual(lines.map(l => l.bytes.toString()), ['b-unread', 'c'])
    assert.equal(lines[0]?.generation, 0)
    assert.equal(lines[1]?.generation, 1)
    assert.equal(lines[1]?.offset, 0)
    await t.close()
  })

  it('after a restart while it was reading the copy of a copytruncated file, finishes the copy with the ids its lines had', async () => {
    await writeFile(file, 'a\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    const first = (await t.refresh(), await t.read(100, 1 << 20))
    assert.deepEqual(first.map(l => l.bytes.toString()), ['a'])
    const originalKey = first[0]?.fileKey
    await appendFile(file, 'b\nc\nd\n')
    await copyFile(file, `${file}.1`)
    await truncate(file, 0)
    await appendFile(file, 'new\n')
    await t.refresh()
    const b = await t.read(1, 1 << 20) // one line of the copy, then the process dies
    assert.deepEqual(b.map(l => [l.bytes.toString(), l.fileKey, l.generation]), [['b', originalKey, 0]])
    const saved = cpOf(t)
    await t.close()

    const again = new Tailer({ paths: [file], maxLineBytes: 1024 }, saved)
    const rest = await readLines(again)
    assert.deepEqual(rest.map(l => [l.bytes.toString(), l.fileKey, l.generation, l.offset]), [
      ['c', originalKey, 0, 4],
      ['d', originalKey, 0, 6],
      ['new', originalKey, 1, 0]
    ])
    await again.close()
  })

  it('after copytruncate of a file it had opened but not read from yet, reads the whole copy, then the new lines', async () => {
    // A collector still busy with an older rotated file has the new file open at offset 0 when logrotate copies
    // and truncates it: with no bytes read there is no tail to compare, so its first bytes must tell (#3).
    await writeFile(file, '')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    await t.refresh()
    await appendFile(file, 'first line of the new file\nsecond\n')
    await t.refresh() // sees the content, reads nothing
    await copyFile(file, `${file}.1`)
    await truncate(file, 0)
    await appendFile(file, 'after the truncation, a longer line than the ones before it was\n')
    const lines = await readLines(t)
    assert.deepEqual(lines.map(l => [l.bytes.toString(), l.generation, l.offset]), [
      ['first line of the new file', 0, 0],
      ['second', 0, 27],
      ['after the truncation, a longer line than the ones before it was', 1, 0]
    ])
    await t.close()
  })

  it('takes no unrelated sibling for the copy when a file it had not read from is truncated without a copy', async () => {
    await writeFile(`${file}.1`, 'an older rotated file, already read before this collector started\n')
    await writeFile(file, 'a line that was dropped by a truncation without copy\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    await t.refresh()
    await truncate(file, 0)
    await appendFile(file, 'x\n')
    const lines = await readLines(t)
    assert.deepEqual(lines.map(l => [l.bytes.toString(), l.generation]), [['x', 1]])
    await t.close()
  })

  it('starts over at a new generation when a file is truncated in place', async () => {
    await writeFile(file, 'aaaa\nbbbb\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    await readAll(t)
    await truncate(file, 0)
    await appendFile(file, 'x\n')
    await t.refresh()
    const lines = await t.read(10, 1 << 20)
    assert.deepEqual(lines.map(l => [l.bytes.toString(), l.generation, l.offset]), [['x', 1, 0]])
    await t.close()
  })

  it('cuts a line longer than the maximum, flags it and continues with the next line', async () => {
    const long = 'x'.repeat(300_000)
    await writeFile(file, `${long}\nnext\n`)
    const t = new Tailer({ paths: [file], maxLineBytes: 1024, chunkBytes: 4096 }, emptyCheckpoint())
    await t.refresh()
    const lines = await t.read(10, 1 << 20)
    assert.equal(lines.length, 2)
    assert.equal(lines[0]?.truncated, true)
    assert.equal(lines[0]?.length, 300_000)
    assert.equal(lines[0]?.bytes.length, 1024)
    assert.equal(lines[1]?.bytes.toString(), 'next')
    assert.equal(lines[1]?.offset, 300_001)
    await t.close()
  })

  it('strips a CR before the newline', async () => {
    await writeFile(file, 'dos\r\n')
    const t = new Tailer({ paths: [file], maxLineBytes: 1024 }, emptyCheckpoint())
    assert.deepEqual(await readAll(t), ['dos'])
    await t.close()
  })
})
