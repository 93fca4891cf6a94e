import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createWebAccessToMessage, parseAccessLine, partitionKey, compileWebAccess, type WebAccessRecord } from '../../../ingest/web-access/index.ts'
import { compileLogFormat, unescape } from '../../../ingest/web-access/log-format.ts'
import { processLineToMessage, type LineMessage } from '../../../ingest/common/collector.ts'
import { handlerFor, parserFor } from '../../../ingest/sources.ts'
import { isAuditError } from '../../../lib/errors.ts'
import type { Position } from '../../../ingest/common/finalize.ts'

// Real lines from Debian 12's nginx 1.22 and apache2 2.4, captured by test/fixtures/web-access/capture.ts.
const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'web-access')
const CUSTOM = readFileSync(join(FIXTURES, 'nginx-custom.format'), 'utf8').trim()
/** Debian's apache2 `combined` logs %O (bytes sent, headers included): read it as this custom format. */
const DEBIAN_APACHE_COMBINED = '$remote_addr $ident $remote_user [$time_local] "$request" $status $bytes_sent "$http_referer" "$http_user_agent"'

const CASES = [
  { file: 'nginx-combined.log', format: 'combined', options: { vhost: 'site-a.test' } },
  { file: 'nginx-custom.log', format: 'custom', options: { logFormat: CUSTOM } },
  { file: 'apache2-vhost_combined.log', format: 'vhost_combined', options: {} },
  { file: 'apache2-combined.log', format: 'custom', options: { logFormat: DEBIAN_APACHE_COMBINED, vhost: 'site-a.test' } }
] as const

function lines (file: string): string[] {
  return readFileSync(join(FIXTURES, file), 'utf8').split('\n').filter(l => l !== '')
}

function line (file: string, re: RegExp, nth = 0): string {
  const found = lines(file).filter(l => re.test(l))[nth]
  assert.ok(found !== undefined, `no line matching ${String(re)} in ${file}`)
  return found
}

const pos = (offset = 0): Position => ({ host: 'web-1', source: 'site-a', fileKey: '64769:1234', generation: 0, offset, path: '/var/log/nginx/access.log' })

function toMessage (format: string, options: Record<string, unknown>, text: string, offset = 0, sequence = 0): LineMessage {
  const out = createWebAccessToMessage(format, options)(text, pos(offset), sequence, new Date())
  assert.ok('message' in out, `expected a message, got ${JSON.stringify(out)}`)
  return out.message
}

function record (format: string, options: Record<string, unknown>, text: string): WebAccessRecord {
  return JSON.parse(toMessage(format, options, text).value) as WebAccessRecord
}

describe('web-access parser on real nginx and apache2 lines', () => {
  for (const c of CASES) {
    it(`turns every line of ${c.file} (${c.format}) into a valid record keyed by its client address`, () => {
      const all = lines(c.file)
      assert.equal(all.length, 20)
      const keys = all.map((l, i) => {
        const m = toMessage(c.format, c.options, l, i * 300, i)
        const r = JSON.parse(m.value) as WebAccessRecord
        assert.equal(m.key, r.source.address)
        assert.equal(r.event.original, l)
        assert.equal(r.event.sequence, i)
        assert.equal(r.url?.domain, 'site-a.test')
        assert.equal(r.auditline.stream, 'web-1/site-a')
        assert.equal(r.auditline.format, c.format)
        assert.equal(r.log.offset, i * 300)
        assert.equal(r.host.name, 'web-1')
        return m.key
      })
      assert.deepEqual([...new Set(keys)].sort(), ['127.0.0.1', '::1'])
      assert.equal(keys.filter(k => k === '::1').length, 10)
    })
  }

  it('maps request, referrer, query and status of nginx combined', () => {
    const l = line('nginx-combined.log', /^::1 .*GET \/search/)
    const r = record('combined', {}, l)
    assert.equal(r['@timestamp'], '2026-11-29T07:17:53.000Z')
    assert.deepEqual(r.source, { address: '::1', ip: '::1' })
    assert.equal(r.http?.request?.method, 'GET')
    assert.equal(r.http?.version, '1.1')
    assert.equal(r.url?.original, '/search?ip=198.51.100.9&v6=2001:db8::3&q=caf%C3%A9')
    assert.equal(r.url?.path, '/search')
    assert.equal(r.url?.query, 'ip=198.51.100.9&v6=2001:db8::3&q=caf%C3%A9')
    assert.equal(r.url?.domain, undefined, 'combined has no vhost, and no vhost option was given')
    assert.equal(r.http?.request?.referrer, 'http://[2001:db8::2]:8080/page?from=192.0.2.44')
    assert.equal(r.http?.response?.status_code, 200)
    assert.equal(r.http?.response?.body?.bytes, 3)
    assert.equal(r.user_agent?.original, 'auditline-test/1.0 (+https://site-a.test/bot)')
    assert.equal(r.event.outcome, 'success')
    assert.match(r.event.id, /^[0-9a-f]{32}$/)
  })

  it('maps every variable of the custom nginx format, X-Forwarded-For included', () => {
    const r = record('custom', { logFormat: CUSTOM }, line('nginx-custom.log', /^127\.0\.0\.1 .*GET \/search/))
    assert.equal(r.http?.request?.x_forwarded_for, '203.0.113.7, 2001:db8::1')
    assert.equal(r.url?.domain, 'site-a.test')
    assert.equal(r.url?.scheme, 'http')
    assert.equal(typeof r.url?.port, 'number')
    assert.equal(r.http?.response?.bytes, 145)
    assert.equal(r.http?.response?.body?.bytes, 3)
    assert.equal(r.event.duration, 0)
    assert.equal(r['@timestamp'], record('combined', {}, line('nginx-combined.log', /^127\.0\.0\.1 .*GET \/search/))['@timestamp'], '$time_iso8601 and $time_local agree')
    const post = record('custom', { logFormat: CUSTOM }, line('nginx-custom.log', /POST \/form/, 1))
    assert.equal(post.http?.request?.method, 'POST')
    assert.equal(post.event.duration, 1_000_000, '$request_time 0.001 s in nanoseconds')
  })

  it('reads apache vhost_combined: %v as url.domain, %p as url.port, %O as response bytes', () => {
    const r = record('vhost_combined', {}, line('apache2-vhost_combined.log', /^site-a\.test:80 ::1 .*missing/))
    assert.equal(r.url?.domain, 'site-a.test')
    assert.equal(r.url?.port, 80)
    assert.equal(r.source.ip, '::1')
    assert.equal(r.http?.response?.status_code, 404)
    assert.equal(r.http?.response?.bytes, 416)
    assert.equal(r.http?.response?.body, undefined)
    assert.equal(r.event.outcome, 'failure')
  })

  it('undoes both servers\' escaping the same way: nginx \\x22 and apache \\" give one user agent', () => {
    const nginx = record('combined', {}, line('nginx-combined.log', /quoted/))
    const apache = record('vhost_combined', {}, line('apache2-vhost_combined.log', /quoted/))
    assert.equal(nginx.user_agent?.original, 'Mozilla/5.0 "quoted" T\u00e4st')
    assert.equal(apache.user_agent?.original, nginx.user_agent?.original)
    assert.match(nginx.event.original, /\\x22quoted\\x22 T\\xE4st/, 'event.original stays as logged')
  })

  it('keeps the basic-auth user as user.name', () => {
    assert.equal(record('combined', {}, line('nginx-combined.log', /visitor/)).user?.name, 'visitor')
    assert.equal(record('vhost_combined', {}, line('apache2-vhost_combined.log', /visitor/)).user?.name, 'visitor')
    assert.equal(record('combined', {}, line('nginx-combined.log', /GET \/ HTTP/)).user, undefined)
  })

  it('splits absolute-form targets, reads HTTP/1.0, and keeps a non-HTTP request as logged', () => {
    const abs = record('combined', {}, line('nginx-combined.log', /absolute/))
    assert.equal(abs.url?.original, 'http://site-a.test/absolute?via=198.51.100.77')
    assert.equal(abs.url?.path, '/absolute')
    assert.equal(abs.url?.query, 'via=198.51.100.77')
    assert.equal(record('vhost_combined', {}, line('apache2-vhost_combined.log', /GET \/old/)).http?.version, '1.0')
    const tls = record('combined', {}, line('nginx-combined.log', /" 400 /))
    assert.equal(tls.http?.request, undefined)
    assert.equal(tls.http?.response?.status_code, 400)
    assert.equal(tls.url?.original, '\\x16\\x03\\x01\\x00\\xA5\\x01\\x00\\x00\\xA1\\x03\\x03')
    assert.equal(tls.url?.path, undefined)
  })

  it('converts $time_local with any offset to UTC', () => {
    // A real line with its +0000 rewritten to +0130: 07:17:53 local is 05:47:53 UTC.
    const shifted = line('nginx-combined.log', /GET \/ HTTP/).replace('+0000]', '+0130]')
    assert.equal(record('combined', {}, shifted)['@timestamp'], '2026-11-29T05:47:53.000Z')
  })

  it('gives a line at the same position the same event.id, and another position another one', () => {
    const l = line('nginx-combined.log', /GET \/ HTTP/)
    const a = JSON.parse(toMessage('combined', {}, l, 100).value) as WebAccessRecord
    const b = JSON.parse(toMessage('combined', {}, l, 100).value) as WebAccessRecord
    const c = JSON.parse(toMessage('combined', {}, l, 200).value) as WebAccessRecord
    assert.equal(a.event.id, b.event.id)
    assert.notEqual(a.event.id, c.event.id)
  })

  it('keys an IPv4-mapped IPv6 client like its IPv4 form, so that one client stays on one partition', () => {
    assert.equal(partitionKey('::FFFF:127.0.0.1'), '127.0.0.1')
    assert.equal(partitionKey('2001:DB8::1'), '2001:db8::1')
    const mapped = line('nginx-combined.log', /^127\.0\.0\.1 .*GET \/ HTTP/).replace(/^127\.0\.0\.1/, '::ffff:127.0.0.1')
    const m = toMessage('combined', {}, mapped)
    assert.equal(m.key, '127.0.0.1')
    assert.equal((JSON.parse(m.value) as WebAccessRecord).source.ip, '::ffff:127.0.0.1')
  })

  it('refuses a line of another shape with a reason that does not quote it', () => {
    const out = createWebAccessToMessage('vhost_combined', {})(line('nginx-combined.log', /search/), pos(), 0, new Date())
    assert.ok('error' in out)
    assert.ok(!out.error.includes('198.51.100.9') && !out.error.includes('127.0.0.1'))
    assert.ok('error' in createWebAccessToMessage('combined', {})('garbage', pos(), 0, new Date()))
  })

  it('keeps visitor data out of dead letters: reason, position and length, not the line', () => {
    const bytes = Buffer.from('127.0.0.1 this is not an access log line')
    const out = processLineToMessage({ bytes, truncated: false, length: bytes.length, path: 'access.log', fileKey: '1:2', generation: 0, offset: 42 },
      createWebAccessToMessage('combined', {}), true, { host: 'web-1', source: 'site-a' }, 7, new Date())
    assert.ok('dead' in out)
    assert.equal(out.dead.code, 'AUD_ERR_INGEST_PARSE')
    assert.equal(out.dead.original, undefined)
    assert.equal(out.dead.original_length, bytes.length)
    assert.equal(out.dead.source.offset, 42)
    assert.equal(out.dead.sequence, 7)
    assert.ok(!JSON.stringify(out.dead).includes('127.0.0.1'))
    const cut = processLineToMessage({ bytes, truncated: true, length: 5_000_000, path: 'access.log', fileKey: '1:2', generation: 0, offset: 0 },
      createWebAccessToMessage('combined', {}), true, { host: 'web-1', source: 'site-a' }, 8, new Date())
    assert.ok('dead' in cut && cut.dead.code === 'AUD_ERR_INGEST_LINE_TOO_LONG' && cut.dead.original === undefined)
  })

  it('registers web-access with its own message step on the restricted raw topic, not as an audit parser', () => {
    const h = handlerFor('web-access', 'custom', { logFormat: CUSTOM })
    assert.equal(h.topic, 'webRaw')
    assert.equal(typeof h.toMessage, 'function')
    assert.equal(h.restricted, true)
    assert.equal(handlerFor('sshd').parser?.dataset, 'sshd.auth')
    assert.throws(() => parserFor('web-access'), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
    assert.throws(() => handlerFor('web-access', 'common'), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID'))
  })

  it('validates its options with messages that name the option', () => {
    const bad: Array<[string | undefined, Record<string, unknown>, RegExp]> = [
      ['custom', {}, /options\.logFormat: format custom needs/],
      ['combined', { logFormat: CUSTOM }, /options\.logFormat: only for format custom/],
      ['custom', { logFormat: '[$time_local] "$request"' }, /options\.logFormat: needs \$remote_addr/],
      ['custom', { logFormat: '$remote_addr "$request"' }, /options\.logFormat: needs \$time_local/],
      ['custom', { logFormat: '$remote_addr$remote_user [$time_local]' }, /follow each other/],
      [undefined, { vhost: 'a b' }, /options\.vhost/],
      [undefined, { site: 'x' }, /options\.site: unknown option/]
    ]
    for (const [format, options, re] of bad) {
      assert.throws(() => compileWebAccess(format, options), (err: unknown) => isAuditError(err, 'AUD_ERR_CONFIG_INVALID') && re.test(err.message), `${String(format)} ${JSON.stringify(options)}`)
    }
    assert.equal(compileWebAccess(undefined, {}).format, 'combined')
  })

  it('compiles the braced form of a variable like $var and ignores unknown variables, which must still match', () => {
    const f = compileLogFormat('${remote_addr} - $remote_user [$time_local] "$request" $status $upstream_addr "$http_x_real_ip"') // eslint-disable-line no-template-curly-in-string
    assert.deepEqual([...f.variables].sort(), ['http_x_real_ip', 'remote_addr', 'remote_user', 'request', 'status', 'time_local', 'upstream_addr'])
    const l = line('nginx-combined.log', /^::1 .*GET \/ HTTP/).replace(/ 200 3 "-" .*$/, ' 200 [::1]:9000 "192.0.2.5"')
    const r = parseAccessLine(f, l)
    assert.ok('draft' in r)
    assert.equal(r.draft.source.ip, '::1')
    assert.ok(!JSON.stringify({ ...r.draft, event: {} }).includes('192.0.2.5'), 'unmapped variables stay only in event.original')
  })

  it('undoes \\xHH as UTF-8, and as Latin-1 where the bytes are not UTF-8', () => {
    assert.equal(unescape('caf\\xC3\\xA9'), 'café')
    assert.equal(unescape('T\\xE4st \\"q\\" \\\\'), 'Täst "q" \\')
    assert.equal(unescape('plain'), 'plain')
  })
})
