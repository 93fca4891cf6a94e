import assert from 'node:assert/strict'
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SequenceJournal, type Reservation } from '../../../lib/sequence-journal.ts'
import { isAuditError } from '../../../lib/errors.ts'

const item = (key: string, fingerprint = `f-${key}`): { key: string, fingerprint: string } => ({ key, fingerprint })

function seqs (r: Reservation | { conflicts: number[] }): number[] {
  assert.ok('sequences' in r, 'expected a reservation, got conflicts')
  return r.sequences
}

describe('panel sequence journal', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-panelseq-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('numbers new ids gap-free and gives a known id its old number', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 100)
    assert.deepEqual(seqs(await j.reserve([item('a'), item('b')])), [0, 1])
    const again = await j.reserve([item('b'), item('c'), item('a')])
    assert.deepEqual(seqs(again), [1, 2, 0])
    assert.equal((again as Reservation).reused, 2)
    await j.close()
  })

  it('continues after a restart without handing out a number twice', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 100)
    await j.reserve([item('a'), item('b'), item('c')])
    await j.close()
    const k = await SequenceJournal.open(dir, 'c1', 100)
    assert.equal(k.nextSequence, 3)
    assert.deepEqual(seqs(await k.reserve([item('b'), item('d')])), [1, 3])
    await k.close()
  })

  it('reserves nothing when any item conflicts (same id, different content)', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 100)
    await j.reserve([item('a')])
    const r = await j.reserve([item('x'), item('a', 'other'), item('x', 'different')])
    assert.deepEqual(r, { conflicts: [1, 2] })
    assert.deepEqual(seqs(await j.reserve([item('x')])), [1], 'x was not reserved by the refused request')
    await j.close()
  })

  it('hands out numbers in order to concurrent reservations', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 1000)
    const all = await Promise.all(Array.from({ length: 50 }, (_v, i) => j.reserve([item(`k${i}`), item(`k${i}b`)])))
    const numbers = all.flatMap(seqs).sort((a, b) => a - b)
    assert.deepEqual(numbers, Array.from({ length: 100 }, (_v, i) => i))
    await j.close()
  })

  it('drops a torn last line left by a crash and refuses a corrupt line in the middle', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 100)
    await j.reserve([item('a'), item('b')])
    await j.close()
    const file = join(dir, 'c1.seq.jsonl')
    await appendFile(file, '{"k":"c","s":2,"f"')
    const k = await SequenceJournal.open(dir, 'c1', 100)
    assert.equal(k.nextSequence, 2)
    assert.deepEqual(seqs(await k.reserve([item('c')])), [2])
    await k.close()
    assert.equal((await readFile(file, 'utf8')).split('\n').filter(l => l !== '').length, 3)

    await writeFile(file, '{"k":"a","s":0,"f":"x"}\nnot json\n{"k":"b","s":1,"f":"y"}\n')
    await assert.rejects(SequenceJournal.open(dir, 'c1', 100), (err: unknown) => isAuditError(err, 'AUD_ERR_SEQUENCE_STATE') && /line 2/.test(err.message))
  })

  it('compacts to the window and keeps the next number across the rewrite', async () => {
    const j = await SequenceJournal.open(dir, 'c1', 3)
    for (let i = 0; i < 10; i++) await j.reserve([item(`k${i}`)])
    await j.close()
    const lines = (await readFile(join(dir, 'c1.seq.jsonl'), 'utf8')).split('\n').filter(l => l !== '')
    assert.ok(lines.length <= 6, `journal has ${lines.length} lines, window 3`)
    const k = await SequenceJournal.open(dir, 'c1', 3)
    assert.equal(k.nextSequence, 10)
    assert.deepEqual(seqs(await k.reserve([item('k9'), item('k0')])), [9, 10], 'an id within the window keeps its number; an older one gets a new number')
    await k.close()
  })
})
