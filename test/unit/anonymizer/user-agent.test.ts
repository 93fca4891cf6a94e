import assert from 'node:assert/strict'
import { parseUserAgent } from '../../../anonymizer/user-agent.ts'

describe('parseUserAgent', () => {
  const cases: Array<[string, string, string | undefined, string, string]> = [
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Chrome', '131', 'Windows', 'desktop'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86', 'Edge', '131', 'Windows', 'desktop'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox', '128', 'Linux', 'desktop'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1', 'Safari', '17', 'iOS', 'mobile'],
    ['Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36', 'Samsung Internet', '26', 'Android', 'mobile'],
    ['Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', 'other', undefined, 'other', 'bot'],
    ['curl/7.88.1', 'curl', '7', 'other', 'other']
  ]
  for (const [ua, name, version, os, device] of cases) {
    it(`classifies ${name} on ${os} as ${device}`, () => {
      const got = parseUserAgent(ua)
      assert.equal(got.name, name)
      assert.equal(got.version, version)
      assert.equal(got.os, os)
      assert.equal(got.device, device)
    })
  }
  it('reports unknown for a missing user agent', () => {
    assert.deepEqual(parseUserAgent('-'), { name: 'unknown', os: 'unknown', device: 'other' })
  })
})
