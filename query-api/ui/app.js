// auditline web UI: plain ES module, no framework, no build step (docs/decisions.md). Every value from the
// API goes into the page through textContent or SVG attributes, never parsed as HTML. The API key lives
// in sessionStorage (gone with the tab) and goes out as `Authorization: ApiKey …`.
/* global document, window, sessionStorage, fetch, location, URLSearchParams, URL, setTimeout, clearTimeout */

const KEY = 'auditline.apiKey'
const SVG = 'http://www.w3.org/2000/svg'
const $ = (sel) => document.querySelector(sel)

// ---------------------------------------------------------------- small helpers

function el (tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else if (k === 'text') e.textContent = v
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v)
    else e.setAttribute(k, v)
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c)
  return e
}

function svg (tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  if (text !== undefined) e.textContent = text
  return e
}

const fmt = new Intl.NumberFormat('en')
const num = (n) => fmt.format(n)

function bytes (n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

function status (text, kind = '') {
  const s = $('#status')
  s.textContent = text
  s.className = kind
}

/** A dotted path of an event (`user.name`), or undefined. */
function pick (obj, path) {
  let v = obj
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined
    v = v[p]
  }
  return v
}

function flatten (obj, prefix = '', out = []) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out)
    else out.push([key, Array.isArray(v) ? v.join(', ') : String(v)])
  }
  return out
}

// ---------------------------------------------------------------- API access

function apiKey () { return sessionStorage.getItem(KEY) ?? '' }

async function api (path, params) {
  const key = apiKey()
  if (key === '') {
    status('Enter your API key first (top right).', 'error')
    $('#key').focus()
    throw new Error('no key')
  }
  const url = params === undefined ? path : `${path}?${params}`
  const res = await fetch(url, { headers: { authorization: `ApiKey ${key}`, accept: 'application/json' } })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) {
    const msg = body.message ?? `HTTP ${res.status}`
    status(res.status === 401 ? `${msg}: check the key.` : msg, 'error')
    const err = new Error(msg)
    err.status = res.status
    throw err
  }
  return body
}

function showKeyState () {
  const key = apiKey()
  $('#key-form').hidden = key !== ''
  $('#key-set').hidden = key === ''
  // The key id (before the dot) is not secret; the secret part is never shown again.
  $('#key-id').textContent = key === '' ? '' : `key ${key.split('.')[0]}`
}

$('#key-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  const input = $('#key')
  sessionStorage.setItem(KEY, input.value.trim())
  input.value = ''
  showKeyState()
  status('')
  route()
})

$('#forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY)
  showKeyState()
  status('Key forgotten.')
})

// ---------------------------------------------------------------- audit search

const LISTS = ['user.name', 'host.name', 'class', 'event.category', 'event.action']
const searchForm = $('#search-form')
let lastParams = null
let nextCursor = null

/** Form → query parameters (lists split at commas, local date-times → UTC). */
function formParams () {
  const p = new URLSearchParams()
  for (const [name, raw] of new window.FormData(searchForm)) {
    const value = String(raw).trim()
    if (value === '') continue
    if (LISTS.includes(name)) {
      for (const v of value.split(',')) if (v.trim() !== '') p.append(name, v.trim())
    } else if (name === 'from' || name === 'to') {
      p.set(name, new Date(value).toISOString())
    } else {
      p.set(name, value)
    }
  }
  return p
}

function localInput (iso) {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const off = d.getTimezoneOffset() * 60_000
  return new Date(d.getTime() - off).toISOString().slice(0, 19)
}

function fillForm (params) {
  searchForm.reset()
  for (const field of searchForm.elements) {
    if (field.name === undefined || field.name === '') continue
    const values = params.getAll(field.name)
    if (values.length === 0) continue
    field.value = field.name === 'from' || field.name === 'to' ? localInput(values[0]) : values.join(', ')
  }
}

function summaryOf (e) {
  return pick(e, 'file.path') ?? pick(e, 'db.statement') ??
    (pick(e, 'panel.object_type') === undefined ? undefined : `${pick(e, 'panel.object_type')} ${pick(e, 'panel.object_id') ?? ''}`) ??
    pick(e, 'process.command_line') ?? pick(e, 'api.route') ?? pick(e, 'event.reason') ?? ''
}

function row (e) {
  const tr = el('tr', { tabindex: '0' },
    el('td', { text: String(e['@timestamp'] ?? '').replace('T', ' ').replace(/(\.\d+)?Z$/, '') }),
    el('td', { text: pick(e, 'auditline.class') ?? '' }),
    el('td', { text: pick(e, 'event.action') ?? '' }),
    el('td', { class: `outcome-${pick(e, 'event.outcome') ?? ''}`, text: pick(e, 'event.outcome') ?? '' }),
    el('td', { text: pick(e, 'user.name') ?? '' }),
    el('td', { text: pick(e, 'host.name') ?? '' }),
    el('td', { text: pick(e, 'source.ip') ?? '' }),
    el('td', { class: 'details', text: String(summaryOf(e)) })
  )
  const open = () => {
    for (const r of document.querySelectorAll('#results tr.selected')) r.classList.remove('selected')
    tr.classList.add('selected')
    showDetail(e)
  }
  tr.addEventListener('click', open)
  tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open() })
  return tr
}

/** A link to the search for `filters`, keeping the reason and case id of the current search. */
function pivot (label, filters) {
  const p = new URLSearchParams()
  for (const k of ['reason', 'case']) if (lastParams?.has(k)) p.set(k, lastParams.get(k))
  for (const [k, v] of Object.entries(filters)) if (v !== undefined) p.set(k, String(v))
  return el('li', {}, el('a', { href: `#/search?${p}`, text: label }))
}

function showDetail (e) {
  $('#detail').hidden = false
  const pivots = $('#pivots')
  pivots.replaceChildren()
  const ticket = pick(e, 'panel.ticket_id')
  if (ticket !== undefined) pivots.append(pivot(`All events of ticket ${ticket}`, { ticket }))
  const session = pick(e, 'ssh.session_id') ?? pick(e, 'ftp.session_id') ?? pick(e, 'db.connection_id')
  if (session !== undefined) pivots.append(pivot(`All events of session ${session} on ${pick(e, 'host.name') ?? 'this host'}`, { session, 'host.name': pick(e, 'host.name') }))
  const stream = pick(e, 'auditline.stream')
  if (stream !== undefined) pivots.append(pivot(`All events of stream ${stream}`, { stream }))
  const user = pick(e, 'user.name')
  if (user !== undefined) pivots.append(pivot(`All events of user ${user}`, { 'user.name': user }))
  const dl = $('#fields')
  dl.replaceChildren()
  for (const [k, v] of flatten(e)) dl.append(el('dt', { text: k }), el('dd', { text: v }))
}

async function runSearch (params, append) {
  const p = new URLSearchParams(params)
  if (!append) {
    lastParams = new URLSearchParams(params)
    nextCursor = null
  }
  if (append && nextCursor !== null) p.set('after', nextCursor)
  status('Searching…')
  let page
  try {
    page = await api('/v1/events', p)
  } catch { return }
  const tbody = $('#results tbody')
  if (!append) {
    tbody.replaceChildren()
    $('#detail').hidden = true
    $('#counts-out').replaceChildren()
  }
  for (const e of page.events) tbody.append(row(e))
  nextCursor = page.next ?? null
  $('#results').hidden = false
  $('#more').hidden = nextCursor === null
  $('#counts').hidden = false
  const shown = tbody.children.length
  $('#summary').textContent = `${num(shown)} of ${page.totalIsLowerBound ? 'more than ' : ''}${num(page.total)} events shown.`
  status('')
}

searchForm.addEventListener('submit', (ev) => {
  ev.preventDefault()
  const p = formParams()
  if (!p.has('reason') && !p.has('case')) {
    status('Say why you search: a reason or a case id.', 'error')
    searchForm.elements.reason.focus()
    return
  }
  const target = `#/search?${p}`
  // Same hash: hashchange would not fire, so search directly.
  if (location.hash === target) runSearch(p, false)
  else location.hash = target
})

$('#more').addEventListener('click', () => { if (lastParams !== null) runSearch(lastParams, true) })

for (const b of document.querySelectorAll('#counts button')) {
  b.addEventListener('click', async () => {
    if (lastParams === null) return
    const p = new URLSearchParams(lastParams)
    for (const k of ['size', 'order', 'after']) p.delete(k)
    p.set('by', b.dataset.by)
    if (b.dataset.by !== 'day') p.set('size', '20')
    let c
    try { c = await api('/v1/events/counts', p) } catch { return }
    const out = $('#counts-out')
    out.replaceChildren(barChart(c.buckets.map(x => ({ key: x.key, count: x.count })), { label: `events by ${c.by}` }),
      el('p', { class: 'hint', text: `${num(c.total)} events${c.other > 0 ? `, ${num(c.other)} not in these buckets` : ''}.` }))
  })
}

function searchView (params) {
  fillForm(params)
  const hasFilter = [...params.keys()].length > 0
  if (hasFilter && (params.has('reason') || params.has('case'))) runSearch(params, false)
}

// ---------------------------------------------------------------- charts (inline SVG)

/** Horizontal bars of `{ key, count }`, largest first. */
function barChart (entries, { label }) {
  if (entries.length === 0) return el('p', { class: 'empty', text: 'No data in this range.' })
  const rowH = 22
  const width = 480
  const labelW = 190
  const max = Math.max(...entries.map(e => e.count), 1)
  const s = svg('svg', { viewBox: `0 0 ${width} ${entries.length * rowH + 4}`, role: 'img', 'aria-label': label, class: 'bars' })
  entries.forEach((e, i) => {
    const y = i * rowH + 2
    const w = Math.max(1, Math.round((width - labelW - 70) * e.count / max))
    const key = e.key.length > 30 ? e.key.slice(0, 29) + '…' : e.key
    s.append(svg('text', { x: labelW - 6, y: y + 15, 'text-anchor': 'end', class: 'label' }, key))
    const bar = svg('rect', { x: labelW, y: y + 3, width: w, height: rowH - 6, rx: 2, class: 'bar' })
    bar.append(svg('title', {}, `${e.key}: ${num(e.count)}`))
    s.append(bar)
    s.append(svg('text', { x: labelW + w + 6, y: y + 15, class: 'value' }, num(e.count)))
  })
  return s
}

/** Lines of several series over time: `series` = [{ name, cls, values }] aligned with `times`. */
function lineChart (times, series, { label, hourly }) {
  const W = 760
  const H = 260
  // Side margins leave room for half an axis label at either end.
  const m = { l: 56, r: 40, t: 16, b: 48 }
  const max = Math.max(1, ...series.flatMap(s => s.values))
  const step = niceStep(max / 4)
  const top = Math.ceil(max / step) * step
  const x = (i) => m.l + (times.length <= 1 ? (W - m.l - m.r) / 2 : i * (W - m.l - m.r) / (times.length - 1))
  const y = (v) => H - m.b - v * (H - m.t - m.b) / top
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'lines' })
  for (let v = 0; v <= top + 1e-9; v += step) {
    s.append(svg('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: 'grid' }))
    s.append(svg('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, num(v)))
  }
  const ticks = Math.min(times.length, 8)
  for (let k = 0; k < ticks; k++) {
    const i = ticks === 1 ? 0 : Math.round(k * (times.length - 1) / (ticks - 1))
    const t = times[i]
    const text = hourly ? `${t.slice(5, 10)} ${t.slice(11, 16)}` : t.slice(5, 10)
    s.append(svg('text', { x: x(i), y: H - m.b + 18, 'text-anchor': 'middle', class: 'axis' }, text))
  }
  for (const ser of series) {
    const d = ser.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')
    s.append(svg('path', { d, class: `line ${ser.cls}` }))
    ser.values.forEach((v, i) => {
      const c = svg('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: times.length > 60 ? 1.5 : 3, class: `dot ${ser.cls}` })
      c.append(svg('title', {}, `${times[i]}: ${num(v)} ${ser.name}`))
      s.append(c)
    })
  }
  series.forEach((ser, k) => {
    const lx = m.l + 8 + k * 130
    s.append(svg('rect', { x: lx, y: H - 10, width: 14, height: 4, class: `key ${ser.cls}` }))
    s.append(svg('text', { x: lx + 20, y: H - 5, class: 'axis' }, ser.name))
  })
  return s
}

function niceStep (raw) {
  if (raw <= 1) return 1
  const p = 10 ** Math.floor(Math.log10(raw))
  const f = raw / p
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p
}

// ---------------------------------------------------------------- statistics

async function sitesView () {
  $('#sites-view').hidden = false
  $('#site-view').hidden = true
  let res
  try { res = await api('/v1/stats/sites') } catch { return }
  const tbody = $('#sites tbody')
  tbody.replaceChildren()
  if (res.sites.length === 0) tbody.append(el('tr', {}, el('td', { colspan: '6', class: 'empty', text: 'No sites with statistics for this key.' })))
  for (const s of res.sites) {
    const d = s.lastDay
    tbody.append(el('tr', {},
      el('td', {}, el('a', { href: `#/stats/${encodeURIComponent(s.site)}`, text: s.site })),
      el('td', { text: d === undefined ? '—' : d.start.slice(0, 10) + (d.partial ? ' (open)' : '') }),
      el('td', { class: 'num', text: d === undefined ? '' : num(d.hits) }),
      el('td', { class: 'num', text: d === undefined ? '' : num(d.pageviews) }),
      el('td', { class: 'num', text: d === undefined ? '' : num(d.visits) }),
      el('td', { class: 'num', text: d === undefined ? '' : num(d.visitors) })))
  }
  if (res.truncated) status('More sites than shown: the first ones by name are listed.')
  else status('')
}

/** Every bucket start of [from, to): buckets without a document had no traffic and chart as zero. */
function bucketStarts (from, to, hourly) {
  const step = hourly ? 3_600_000 : 86_400_000
  const first = Math.floor(Date.parse(from) / step) * step
  const out = []
  for (let t = first; t < Date.parse(to) && out.length < 10_000; t += step) out.push(new Date(t).toISOString())
  return out
}

async function siteView (site, params) {
  $('#sites-view').hidden = true
  $('#site-view').hidden = false
  $('#site-name').textContent = site
  const form = $('#range-form')
  form.elements.granularity.value = params.get('granularity') ?? 'day'
  form.elements.from.value = (params.get('from') ?? '').slice(0, 10)
  form.elements.to.value = (params.get('to') ?? '').slice(0, 10)
  let st
  try { st = await api(`/v1/stats/sites/${encodeURIComponent(site)}`, params) } catch {
    for (const id of ['#tiles', '#chart-traffic', '#chart-pages', '#chart-browsers', '#chart-referrers', '#chart-entry', '#chart-os', '#chart-devices']) $(id).replaceChildren()
    return
  }
  if (!params.has('from')) form.elements.from.value = st.from.slice(0, 10)
  // The end is exclusive: an end inside a day (the end of the current hour) is shown as the next day.
  if (!params.has('to')) form.elements.to.value = new Date(Math.ceil(Date.parse(st.to) / 86_400_000) * 86_400_000).toISOString().slice(0, 10)
  const hourly = st.granularity === 'hour'
  const t = st.totals
  $('#tiles').replaceChildren(
    ...[['Hits', num(t.hits)], ['Pageviews', num(t.pageviews)], ['Visits', num(t.visits)], ['Traffic', bytes(t.bytes)],
      ['Errors (4xx/5xx)', num(t.status['4xx'] + t.status['5xx'])], [hourly ? 'Hours with data' : 'Days with data', num(st.series.length)]]
      .map(([k, v]) => el('div', { class: 'tile' }, el('span', { class: 'k', text: k }), el('span', { class: 'v', text: v }))))
  const times = bucketStarts(st.from, st.to, hourly)
  const byStart = new Map(st.series.map(p => [p.start, p]))
  const values = (f) => times.map(ts => byStart.get(ts)?.[f] ?? 0)
  $('#chart-traffic').replaceChildren(st.series.length === 0
    ? el('p', { class: 'empty', text: 'No data in this range.' })
    : lineChart(times, [{ name: 'visitors', cls: 'visitors', values: values('visitors') }, { name: 'pageviews', cls: 'pageviews', values: values('pageviews') }], { label: `visitors and pageviews of ${site}`, hourly }))
  const charts = { pages: '#chart-pages', browsers: '#chart-browsers', referrer_domains: '#chart-referrers', entry_pages: '#chart-entry', os: '#chart-os', devices: '#chart-devices' }
  for (const [list, id] of Object.entries(charts)) $(id).replaceChildren(barChart(st.top[list], { label: `${list} of ${site}` }))
  status('')
}

$('#range-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  const f = ev.target.elements
  const p = new URLSearchParams({ granularity: f.granularity.value })
  if (f.from.value !== '') p.set('from', f.from.value)
  if (f.to.value !== '') p.set('to', f.to.value)
  location.hash = `#/stats/${encodeURIComponent($('#site-name').textContent)}?${p}`
})

// ---------------------------------------------------------------- evidence exports

const EXPORT_LISTS = ['user.name', 'host.name', 'class', 'event.action']

/** Export form → JSON body of POST /v1/exports (lists split at commas, local date-times → UTC). */
function exportBody (form) {
  const body = {}
  for (const [name, raw] of new window.FormData(form)) {
    const value = String(raw).trim()
    if (value === '') continue
    if (EXPORT_LISTS.includes(name)) body[name] = value.split(',').map(v => v.trim()).filter(v => v !== '')
    else if (name === 'from' || name === 'to') body[name] = new Date(value).toISOString()
    else body[name] = value
  }
  return body
}

async function apiSend (method, path, body) {
  const key = apiKey()
  if (key === '') { status('Enter your API key first (top right).', 'error'); throw new Error('no key') }
  const res = await fetch(path, { method, headers: { authorization: `ApiKey ${key}`, accept: 'application/json', 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const out = await res.json().catch(() => ({}))
  if (!res.ok) { status(out.message ?? `HTTP ${res.status}`, 'error'); throw new Error(out.message ?? String(res.status)) }
  return out
}

let exportTimer = null

function showJob (job) {
  $('#export-job').hidden = false
  const p = job.progress ?? { phase: job.status, done: 0, total: 0 }
  $('#export-state').textContent = `Export ${job.id.slice(0, 8)}: ${job.status === 'failed' ? `failed (${job.error?.message ?? ''})` : p.phase}`
  $('#export-progress').max = Math.max(1, p.total)
  $('#export-progress').value = p.done
  $('#export-count').textContent = `${num(p.done)} / ${num(p.total)} events`
  const link = $('#export-download')
  link.hidden = job.status !== 'done'
  if (job.status === 'done') {
    link.textContent = `Download bundle (${num(job.counts.events)} events${job.counts.unsealed_skipped > 0 ? `, ${num(job.counts.unsealed_skipped)} not sealed yet left out` : ''})`
    link.dataset.bundle = job.bundle
    link.dataset.name = `evidence-${job.id}.tar`
  }
}

async function pollExport (id) {
  clearTimeout(exportTimer)
  const job = await api(`/v1/exports/${encodeURIComponent(id)}`)
  showJob(job)
  if (job.status === 'queued' || job.status === 'running') exportTimer = setTimeout(() => { pollExport(id).catch(() => {}) }, 500)
  else status(job.status === 'done' ? 'Export ready.' : 'Export failed.', job.status === 'done' ? '' : 'error')
}

$('#export-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  status('Starting export…')
  const job = await apiSend('POST', '/v1/exports', exportBody(ev.target)).catch(() => undefined)
  if (job === undefined) return
  showJob(job)
  await pollExport(job.id).catch(() => {})
})

// A plain link cannot carry the Authorization header: fetch the tar and hand it to the browser as a blob.
$('#export-download').addEventListener('click', async (ev) => {
  ev.preventDefault()
  const a = ev.currentTarget
  const res = await fetch(a.dataset.bundle, { headers: { authorization: `ApiKey ${apiKey()}` } })
  if (!res.ok) { status(`Download failed: HTTP ${res.status}`, 'error'); return }
  const url = URL.createObjectURL(await res.blob())
  const tmp = el('a', { href: url, download: a.dataset.name })
  document.body.append(tmp)
  tmp.click()
  tmp.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  status('Bundle downloaded.')
})

// ---------------------------------------------------------------- routing (#/search?…, #/stats/<site>?…, #/exports)

function route () {
  const hash = location.hash === '' ? '#/search' : location.hash
  const [path, query = ''] = hash.slice(1).split('?')
  const params = new URLSearchParams(query)
  const parts = path.split('/').filter(Boolean)
  const view = ['search', 'stats', 'exports'].includes(parts[0]) ? parts[0] : 'search'
  for (const v of ['search', 'stats', 'exports']) $(`#view-${v}`).hidden = v !== view
  for (const a of document.querySelectorAll('nav a[data-nav]')) a.classList.toggle('active', a.dataset.nav === view)
  status('')
  if (apiKey() === '' && view !== 'exports') {
    status('Enter your API key (top right) to search or see statistics. It is kept in this tab only.')
    return
  }
  if (view === 'search') searchView(params)
  else if (view === 'stats') {
    if (parts[1] === undefined) sitesView()
    else siteView(decodeURIComponent(parts[1]), params)
  }
}

window.addEventListener('hashchange', route)
showKeyState()
route()
