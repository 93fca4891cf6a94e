import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAppConfig } from '../../../cli/config.ts'
import { isAuditError } from '../../../lib/errors.ts'

describe('config', () => {
  async function file (text: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'auditline-cfg-'))
    const f = join(dir, 'auditline.yaml')
    await writeFile(f, text)
    return f
  }

  it('fills defaults when nothing is configured', () => {
    const cfg = loadAppConfig(undefined, {})
    assert.deepEqual(cfg.kafka.brokers, [])
    assert.equal(cfg.queryApi.port, 8080)
    assert.equal(cfg.ingest.maxLineBytes, 65536)
  })

  it('lets AUDITLINE_* variables override the file, typed by the schema', async () => {
    const f = await file('kafka:\n  brokers: [a:1]\nqueryApi:\n  port: 1\n')
    const cfg = loadAppConfig(f, { AUDITLINE_KAFKA__BROKERS: 'b:9092, c:9092', AUDITLINE_QUERY_API__PORT: '8181', AUDITLINE_INGEST__SOURCES: '[{"name":"auth","type":"sshd","paths":["/x"]}]' })
    assert.deepEqual(cfg.kafka.brokers, ['b:9092', 'c:9092'])
    assert.equal(cfg.queryApi.port, 8181)
    assert.equal(cfg.ingest.sources[0]?.name, 'auth')
  })

  it('rejects an unknown field and names it', async () => {
    const f = await file('kafka:\n  brokerz: [a:1]\n')
    assert.throws(() => loadAppConfig(f, {}), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && err.message.includes('brokerz'))
  })

  it('rejects an env variable that names no field', () => {
    assert.throws(() => loadAppConfig(undefined, { AUDITLINE_KAFKA__BROKER: 'x' }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && err.message.includes('AUDITLINE_KAFKA__BROKER'))
  })

  it('lets the local stack\'s and the test suite\'s own AUDITLINE_ variables pass, and still refuses a typo next to them', () => {
    const cfg = loadAppConfig(undefined, { AUDITLINE_KEEP_STACK: '1', AUDITLINE_STACK_JAVA_HOME: '/usr/lib/jvm/x', AUDITLINE_QUERY_API__PORT: '8182' })
    assert.equal(cfg.queryApi.port, 8182)
    assert.throws(() => loadAppConfig(undefined, { AUDITLINE_KEEP_STACK: '1', AUDITLINE_KEEP_STACKS: '1' }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && err.message.includes('AUDITLINE_KEEP_STACKS'))
  })

  it('rejects a non-numeric value for a number field', () => {
    assert.throws(() => loadAppConfig(undefined, { AUDITLINE_QUERY_API__PORT: 'eighty' }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
  })

  it('rejects an unknown source type', () => {
    assert.throws(() => loadAppConfig(undefined, { AUDITLINE_INGEST__SOURCES: '[{"name":"a","type":"telnetd","paths":["/x"]}]' }), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
  })

  it('returns a deep-frozen config', () => {
    const cfg = loadAppConfig(undefined, {})
    assert.ok(Object.isFrozen(cfg))
    assert.ok(Object.isFrozen(cfg.kafka.brokers))
  })
})
