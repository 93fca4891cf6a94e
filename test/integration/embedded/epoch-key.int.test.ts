import assert from 'node:assert/strict'
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { createLogger } from '../../../lib/log.ts'
import { generateSealKey } from '../../../lib/seal.ts'
import { loadAppConfig } from '../../../cli/config.ts'
import { startEmbedded } from '../../../cli/embedded.ts'
import { Anonymizer } from '../../../anonymizer/run.ts'
import { clf } from '../../helpers/access-log.ts'
import { waitFor } from '../../helpers/stack.ts'

/** Every file below `dir`, recursively (the store, its WAL and shared memory, checkpoints, journals). */
function files (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}

describe('embedded mode: the epoch key stays in memory', function () {
  this.timeout(120_000)
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-epoch-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes the anonymized records but no trace of the key (raw, hex, base64) into any file of its state', async () => {
    const access = join(dir, 'access.log')
    writeFileSync(access, '')
    const cfg = loadAppConfig(undefined, {}, {
      log: { level: 'warn' },
      stateDir: join(dir, 'state'),
      metrics: { port: -1 },
      embedded: { file: join(dir, 'state', 'auditline.db') },
      queryApi: { port: 0 },
      indexer: { seal: { privateKey: generateSealKey().privatePem } },
      ingest: { checkpointDir: join(dir, 'state', 'cp'), pollMs: 20, sources: [{ name: 'shop', type: 'web-access', paths: [access], options: { vhost: 'shop.example.org' } }] }
    })
    const anonymizer = new Anonymizer(cfg.anonymizer)
    const running = await startEmbedded(cfg, { log: createLogger({ level: 'warn' }), signal: new AbortController().signal, metrics: new Registry() }, { anonymizer })
    let key: Buffer
    try {
      const now = new Date()
      let lines = ''
      for (let i = 0; i < 2000; i++) lines += `198.51.100.${i % 250 + 1} - - [${clf(now.getTime())}] "GET /p/${i % 40} HTTP/1.1" 200 ${100 + i} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"\n`
      appendFileSync(access, lines)
      await running.collect.drained()
      const stored = await waitFor('2,000 anonymized records', async () => {
        const n = running.store.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM anon_log').get()?.n ?? 0
        return n >= 2000 ? n : undefined
      })
      assert.equal(stored, 2000)
      const k = anonymizer.ring.keyFor(now.getTime())
      assert.ok(k !== undefined, 'the epoch of the records has a live key')
      key = Buffer.from(k.bytes)
    } finally {
      await running.close()
    }
    assert.equal(anonymizer.ring.liveEpochs.length, 0, 'close() destroyed the keys')
    const needles = [key, Buffer.from(key.toString('hex')), Buffer.from(key.toString('base64')), Buffer.from(key.toString('base64url'))]
    const checked = files(join(dir, 'state'))
    assert.ok(checked.some(f => f.endsWith('auditline.db')), 'the store file was checked')
    for (const f of checked) {
      const bytes = readFileSync(f)
      for (const n of needles) assert.equal(bytes.indexOf(n), -1, `the epoch key (${n.length} bytes form) is in ${f}`)
    }
  })
})
