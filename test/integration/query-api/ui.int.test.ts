/**
 * The web UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core): the API runs on
 * the real Elasticsearch store with seeded events and statistics; the test enters a key, searches a user and
 * sees the rows, follows a pivot link, opens a site dashboard and sees drawn charts. Screenshots are saved
 * under test-output/query-api/. A CSP violation or script error fails the test.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { Client } from '@elastic/elasticsearch'
import { chromium, type Browser, type Page } from 'playwright-core'
import { createKey } from '../../../lib/apikey.ts'
import { stack, uniquePrefix } from '../../helpers/stack.ts'
import { statsDoc } from '../../helpers/stats-docs.ts'
import { apiOnElasticsearch, auditEvent, deleteIndices, esClient, recordingAuditor, seedEvents, seedStats } from '../../helpers/query-api.ts'

/**
 * The little of the DOM that functions run in the page use (the project's TypeScript has no DOM library, and
 * the page's CSP rightly refuses functions given as strings).
 */
declare const document: {
  querySelectorAll (selector: string): { length: number }
  querySelector (selector: string): { getAttribute (name: string): string | null, classList: { contains (c: string): boolean } } | null
}

const OUT = 'test-output/query-api'
const CHROMIUM = '/usr/bin/chromium'
const HOUR = 3_600_000
const DAY = 86_400_000

describe('web UI in headless Chromium', function () {
  this.timeout(60_000)
  const { indexPrefix } = uniquePrefix()
  const auditor = recordingAuditor()
  let es: Client | undefined
  let app: ReturnType<typeof apiOnElasticsearch> | undefined
  let browser: Browser | undefined
  let page: Page
  let base: string
  const problems: string[] = []
  let sec: Awaited<ReturnType<typeof createKey>>
  let stats: Awaited<ReturnType<typeof createKey>>

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (listed in .ci/apt-packages.txt)`)
    sec = await createKey()
    stats = await createKey()
    es = esClient(stack().esUrl)
    const now = Date.now()
    const today = Math.floor(now / DAY) * DAY
    const thisHour = Math.floor(now / HOUR) * HOUR
    const at = (msAgo: number): string => new Date(now - msAgo).toISOString()
    await seedEvents(es, indexPrefix, [
      auditEvent({ at: at(5 * HOUR), action: 'ssh_login', user: 'anna', host: 'web01', ip: '192.0.2.10' }),
      auditEvent({ at: at(4 * HOUR), action: 'ssh_login_failed', user: 'anna', host: 'web02', ip: '2001:db8::10', outcome: 'failure' }),
      auditEvent({ at: at(3 * HOUR), action: 'ftp_upload', user: 'anna', host: 'ftp01', eventClass: 'ftp', category: ['file'], extra: { file: { path: '/srv/www/shop/index.php' }, ftp: { session_id: '4242', server: 'proftpd' } } }),
      auditEvent({ at: at(2 * HOUR), action: 'ftp_delete', user: 'anna', host: 'ftp01', eventClass: 'ftp', category: ['file'], extra: { file: { path: '/srv/www/shop/old.php' }, ftp: { session_id: '4242', server: 'proftpd' } } }),
      auditEvent({ at: at(1 * HOUR), action: 'database_update', user: 'anna', host: 'panel', eventClass: 'panel', category: ['configuration'], extra: { panel: { actor_kind: 'staff', customer: 'cust-4711', object_type: 'database', object_id: 'db_shop', ticket_id: 'T-100' } } }),
      auditEvent({ at: at(30 * 60_000), action: 'database_delete', user: 'bob', host: 'panel', eventClass: 'panel', category: ['configuration'], extra: { panel: { actor_kind: 'staff', customer: 'cust-4711', object_type: 'database', object_id: 'db_old', ticket_id: 'T-100' } } }),
      auditEvent({ at: at(20 * 60_000), action: 'ssh_login', user: 'bob', host: 'web01', ip: '198.51.100.7' })
    ])
    // Fourteen days (today's still open) and the last 24 hours of a site of tenant A, one day of tenant B's.
    const browsers = ['Firefox', 'Chrome', 'Safari', 'Edge']
    const docs = []
    for (let d = 13; d >= 0; d--) {
      const k = 14 - d
      docs.push(statsDoc({
        site: 'shop.a.example',
        granularity: 'day',
        start: new Date(today - d * DAY).toISOString(),
        partial: d === 0,
        hits: 400 + 37 * k + (k % 3) * 60,
        pageviews: 150 + 11 * k + (k % 4) * 25,
        visitors: 40 + 3 * k + (k % 5) * 6,
        top: {
          pages: [{ key: '/', count: 60 + k }, { key: '/products/lamp', count: 30 + 2 * k }, { key: '/cart', count: 20 + k }, { key: '/checkout', count: 9 + k }],
          entry_pages: [{ key: '/', count: 25 }, { key: '/products/lamp', count: 12 }],
          referrer_domains: [{ key: 'search.example', count: 30 + k }, { key: 'news.example', count: 12 }, { key: 'forum.example', count: 4 + (k % 3) }],
          browsers: browsers.map((key, i) => ({ key, count: 20 - 4 * i + (k % 2) })),
          os: [{ key: 'Windows', count: 20 }, { key: 'Linux', count: 9 }, { key: 'Android', count: 14 }],
          devices: [{ key: 'desktop', count: 29 }, { key: 'smartphone', count: 14 }]
        }
      }))
    }
    for (let h = 23; h >= 0; h--) {
      docs.push(statsDoc({ site: 'shop.a.example', granularity: 'hour', start: new Date(thisHour - h * HOUR).toISOString(), hits: 20 + ((h * 7) % 13) * 3, visitors: 3 + ((h * 5) % 7), pageviews: 8 + ((h * 3) % 11) }))
    }
    docs.push(statsDoc({ site: 'shop.b.example', granularity: 'day', start: new Date(today - DAY).toISOString(), hits: 999_999 }))
    await seedStats(es, indexPrefix, docs)

    app = apiOnElasticsearch(es, indexPrefix, {
      apiKeys: [
        { id: sec.id, hash: sec.hash, roles: ['security'], owner: 'secteam-alice' },
        { id: stats.id, hash: stats.hash, roles: ['stats'], owner: 'cust-a', tenant: 'tenant-a' }
      ],
      tenants: [{ id: 'tenant-a', sites: ['shop.a.example'] }, { id: 'tenant-b', sites: ['shop.b.example'] }]
    }, auditor)
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    await mkdir(OUT, { recursive: true })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    page.setDefaultTimeout(10_000)
    // A CSP violation is reported as a console error ("Refused to …"); any script error fails the test too.
    page.on('console', m => { if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) problems.push(m.text()) })
    page.on('pageerror', e => { problems.push(String(e)) })
  })

  after(async () => {
    await browser?.close()
    await app?.close()
    if (es !== undefined) {
      await deleteIndices(es, indexPrefix)
      await es.close()
    }
  })

  it('searches a seeded user and shows their events, then follows the ticket link', async () => {
    await page.goto(`${base}/#/search`)
    await page.fill('#key', sec.key)
    await page.click('#key-form button')
    await page.fill('#search-form input[name="reason"]', 'UI test: review of anna\'s changes')
    await page.fill('#search-form input[name="user.name"]', 'anna')
    await page.click('#search-form button.primary')
    await page.waitForSelector('#results tbody tr')
    const rows = await page.$$eval('#results tbody tr', trs => trs.map(tr => [...tr.children].map(td => td.textContent ?? '')))
    assert.equal(rows.length, 5)
    assert.ok(rows.every(r => r[4] === 'anna'), JSON.stringify(rows))
    assert.deepEqual(rows.map(r => r[2]), ['database_update', 'ftp_delete', 'ftp_upload', 'ssh_login_failed', 'ssh_login'])
    assert.match(await page.textContent('#summary') ?? '', /5 of 5 events/)

    await page.click('#results tbody tr:first-child')
    await page.waitForSelector('#detail:not([hidden])')
    const pivots = await page.$$eval('#pivots a', as => as.map(a => a.textContent ?? ''))
    assert.ok(pivots.includes('All events of ticket T-100'), pivots.join(' | '))
    assert.ok(pivots.some(p => p.startsWith('All events of stream panel/')), pivots.join(' | '))
    await page.screenshot({ path: `${OUT}/search.png`, fullPage: true })

    await page.click('#pivots a:text-is("All events of ticket T-100")')
    await page.waitForFunction(() => document.querySelectorAll('#results tbody tr').length === 2)
    const users = await page.$$eval('#results tbody tr td:nth-child(5)', tds => tds.map(td => td.textContent))
    assert.deepEqual(users, ['bob', 'anna'])

    const searches = auditor.recorded.filter(r => r.action === 'api_search')
    assert.equal(searches.length, 2)
    assert.ok(searches.every(s => s.reason === 'UI test: review of anna\'s changes' && s.principal?.owner === 'secteam-alice'))
    assert.deepEqual(searches.map(s => s.results), [5, 2])
  })

  it('opens a site dashboard with a drawn traffic chart and top lists', async () => {
    await page.click('#forget')
    await page.fill('#key', stats.key)
    await page.click('#key-form button')
    await page.goto(`${base}/#/stats`)
    await page.waitForSelector('#sites tbody a')
    assert.deepEqual(await page.$$eval('#sites tbody a', as => as.map(a => a.textContent)), ['shop.a.example'])
    await page.screenshot({ path: `${OUT}/sites.png` })
    await page.click('#sites tbody a:text-is("shop.a.example")')
    await page.waitForSelector('#chart-traffic svg path.line')
    const paths = await page.$$eval('#chart-traffic svg path.line', ps => ps.map(p => (p.getAttribute('d') ?? '').split('L').length))
    assert.equal(paths.length, 2, 'visitors and pageviews')
    assert.ok(paths.every(n => n >= 14), `a point per day: ${paths.join(',')}`)
    const bars = await page.$$eval('#chart-pages svg rect.bar', rs => rs.map(r => Number(r.getAttribute('width'))))
    assert.equal(bars.length, 4)
    assert.ok(bars.every(w => w > 0))
    assert.deepEqual(await page.$$eval('#chart-browsers svg text.label', ts => ts.map(t => t.textContent)), ['Firefox', 'Chrome', 'Safari', 'Edge'])
    assert.ok(await page.$$eval('#chart-referrers svg rect.bar', rs => rs.length) === 3)
    assert.match(await page.textContent('#tiles') ?? '', /Pageviews/)
    await page.screenshot({ path: `${OUT}/dashboard.png`, fullPage: true })

    await page.selectOption('#range-form select[name="granularity"]', 'hour')
    await page.fill('#range-form input[name="from"]', '')
    await page.fill('#range-form input[name="to"]', '')
    await page.click('#range-form button')
    await page.waitForFunction(() => (document.querySelector('#chart-traffic svg path.line')?.getAttribute('d') ?? '').split('L').length >= 24)
    await page.screenshot({ path: `${OUT}/dashboard-hourly.png` })

    // Tenant B's site: the same answer as a site that does not exist.
    await page.goto(`${base}/#/stats/shop.b.example`)
    await page.waitForFunction(() => document.querySelector('#status')?.classList.contains('error') === true)
    assert.match(await page.textContent('#status') ?? '', /No statistics site shop\.b\.example/)
    assert.doesNotMatch(await page.content(), /999[,.]?999/)
  })

  it('shows the export form, which the API refuses to a non-auditor key, links the API reference, and no script or CSP error happened', async () => {
    // The whole export round trip (seals, job, download, verify-export) is in export.int.test.ts.
    await page.goto(`${base}/#/exports`)
    await page.waitForSelector('#view-exports:not([hidden])')
    await page.fill('#export-form input[name="case_id"]', 'DPA-1')
    await page.fill('#export-form input[name="reason"]', 'UI test export')
    await page.fill('#export-form input[name="user.name"]', 'anna')
    await page.click('#export-form button.primary')
    await page.waitForFunction(() => document.querySelector('#status')?.classList.contains('error') === true)
    assert.match(await page.textContent('#status') ?? '', /Role \w+ may not export events/)
    await page.screenshot({ path: `${OUT}/exports.png` })
    await page.click('nav a:text-is("API reference")')
    await page.waitForSelector('body.docs section')
    assert.ok((await page.$$eval('body.docs section h2', hs => hs.map(h => h.textContent))).includes('GET /v1/stats/sites/{site}'))
    await page.screenshot({ path: `${OUT}/docs.png` })
    assert.deepEqual(problems, [])
  })
})
