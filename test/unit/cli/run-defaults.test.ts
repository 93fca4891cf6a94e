import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../../lib/log.ts'
import { isEmbedded, loadAppConfig } from '../../../cli/config.ts'
import { MACHINE_SOURCES, prepareRun } from '../../../cli/run-defaults.ts'

describe('auditline run defaults', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'auditline-run-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('follows the machine logs with configurations every source accepts', () => {
    const cfg = loadAppConfig(undefined, {}, { ingest: { sources: MACHINE_SOURCES } })
    assert.equal(cfg.ingest.sources.length, MACHINE_SOURCES.length)
  })

  it('is embedded when neither Kafka nor Elasticsearch is configured, distributed when both are or when asked', () => {
    assert.equal(isEmbedded(loadAppConfig(undefined, {}, {})), true)
    assert.equal(isEmbedded(loadAppConfig(undefined, {}, { kafka: { brokers: ['k:9092'] }, elasticsearch: { url: 'http://es:9200' } })), false)
    assert.equal(isEmbedded(loadAppConfig(undefined, {}, { mode: 'distributed' })), false)
    assert.equal(isEmbedded(loadAppConfig(undefined, {}, { mode: 'embedded', kafka: { brokers: ['k:9092'] } })), true)
  })

  it('with --demo: writes demo logs, follows them, and creates an API key and a seal key once', async () => {
    const base = loadAppConfig(undefined, {}, { stateDir: dir, ingest: { checkpointDir: join(dir, 'cp') } })
    const log = createLogger({ level: 'silent' })
    const first = await prepareRun(base, log, { demo: true })
    try {
      assert.ok(first.demo !== undefined)
      assert.ok(first.cfg.ingest.sources.length >= 6)
      assert.ok(first.cfg.ingest.sources.every(s => s.paths.every(p => p.startsWith(join(dir, 'demo')) && existsSync(p))))
      assert.match(first.apiKey ?? '', /^al_/)
      assert.ok(first.notes.some(n => n.startsWith('Embedded mode')))
    } finally {
      await first.demo?.close()
    }
    const second = await prepareRun(base, log, { demo: true })
    await second.demo?.close()
    assert.equal(second.apiKey, undefined, 'the key is shown once; a later run reuses the stored hash')
    assert.deepEqual(second.cfg.queryApi.apiKeys, first.cfg.queryApi.apiKeys)
    assert.equal(second.cfg.indexer.seal.privateKeyFile, join(dir, 'seal-key.pem'))
  })
})
