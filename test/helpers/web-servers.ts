/**
 * Real web servers for the web-access tests: Debian's nginx (nginx-light) and apache2, each with its own config
 * in a temp dir, on a free port on 127.0.0.1 and [::1], in the foreground (stopped by stop()).
 *
 * nginx writes `combined` and a custom `log_format` with X-Forwarded-For, vhost, port, scheme and request time;
 * apache2 writes Debian's `vhost_combined` and `combined` (Debian's combined logs %O, bytes sent with headers).
 * WEB_REQUESTS is what the tests send: IPv4 and IPv6 clients, X-Forwarded-For, referrers and query strings that
 * hold IPs, a basic-auth user, a 404, POST and HEAD, a user agent with a quote and a non-ASCII byte, an
 * HTTP/1.0 and an absolute-form request, and bytes that are not HTTP at all.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, canConnect } from './net.ts'

export type Loopback = '127.0.0.1' | '::1'

export interface RunningWeb {
  readonly name: 'nginx' | 'apache2'
  readonly port: number
  /** Access logs by format name: nginx `combined`, `custom`; apache2 `vhost_combined`, `combined`. */
  readonly logs: Readonly<Record<string, string>>
  /** The nginx `log_format` of the `custom` log (nginx only). */
  readonly customFormat?: string
  /** Debian package version. */
  readonly version: string
  output (): string
  /** Waits until `file` has at least `lines` lines (servers write access logs after the response). */
  waitForLines (file: string, lines: number, timeoutMs?: number): Promise<void>
  stop (): Promise<void>
}

/** The vhost both servers answer for (requests send it as Host). */
export const SITE = 'site-a.test'

/** nginx `log_format` of the custom log: every field the collector maps, X-Forwarded-For included. */
export const NGINX_CUSTOM_FORMAT = '$remote_addr - $remote_user [$time_iso8601] "$request" $status $body_bytes_sent $bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $host $server_name $server_port $scheme $request_time $request_method "$request_uri" $server_protocol'

/** Apache's `%r`, `%{Referer}i` … need the format in double quotes: the config line, escaped as apache2.conf has it. */
const APACHE_VHOST_COMBINED = 'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined'
const APACHE_COMBINED = 'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined'

function exec (cmd: string, args: readonly string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, stdout, stderr })
    })
  })
}

async function debVersion (pkg: string): Promise<string> {
  // dpkg-query's own format syntax, not a template string.
  return (await exec('dpkg-query', ['-W', '-f=${Version}', pkg])).stdout.trim() // eslint-disable-line no-template-curly-in-string
}

async function lineCount (file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(l => l !== '').length
}

async function startServer (name: RunningWeb['name'], cmd: string, args: string[], port: number, logs: Record<string, string>, extra: Partial<RunningWeb>): Promise<RunningWeb> {
  // detached: own process group, so stop() reaches the workers too.
  const child: ChildProcess = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: string[] = []
  child.stdout?.on('data', (b: Buffer) => out.push(b.toString()))
  child.stderr?.on('data', (b: Buffer) => out.push(b.toString()))
  const web: RunningWeb = {
    name,
    port,
    logs,
    version: await debVersion(name === 'nginx' ? 'nginx-light' : 'apache2'),
    ...extra,
    output: () => `--- ${name} (pid ${String(child.pid)}, exit ${String(child.exitCode)})\n${out.join('').slice(-4000)}`,
    async waitForLines (file, lines, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs
      while (await lineCount(file) < lines) {
        if (Date.now() > until) throw new Error(`${file} has ${await lineCount(file)} of ${lines} lines after ${timeoutMs} ms\n${web.output()}`)
        await sleep(50)
      }
    },
    async stop () {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
      try { process.kill(-child.pid, 'SIGTERM') } catch { /* already gone */ }
      if (!await Promise.race([gone.then(() => true), sleep(5000).then(() => false)])) {
        try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
        await gone
      }
    }
  }
  const until = Date.now() + 15_000
  for (const host of ['127.0.0.1', '::1']) {
    while (!await canConnect(host, port)) {
      if (child.exitCode !== null || Date.now() > until) {
        await web.stop()
        throw new Error(`${name} did not listen on [${host}]:${port}\n${web.output()}`)
      }
      await sleep(50)
    }
  }
  return web
}

/** nginx (Debian nginx-light) in the foreground with its own prefix, config and logs under `dir`. */
export async function startNginx (dir: string): Promise<RunningWeb> {
  await mkdir(join(dir, 'tmp'), { recursive: true })
  const port = await freePort()
  const logs = { combined: join(dir, 'access-combined.log'), custom: join(dir, 'access-custom.log') }
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} info;
events { worker_connections 64; }
http {
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  log_format custom '${NGINX_CUSTOM_FORMAT}';
  server {
    listen 127.0.0.1:${port};
    listen [::1]:${port};
    server_name ${SITE};
    access_log ${logs.combined} combined;
    access_log ${logs.custom} custom;
    location / { return 200 "ok\\n"; }
    location /missing { return 404; }
  }
}
`)
  return await startServer('nginx', 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')], port, logs, { customFormat: NGINX_CUSTOM_FORMAT })
}

/** apache2 (Debian) in the foreground: `-DFOREGROUND`, its own ServerRoot, config and logs under `dir`. */
export async function startApache (dir: string): Promise<RunningWeb> {
  const docroot = join(dir, 'htdocs')
  await mkdir(docroot, { recursive: true })
  // Workers run as www-data: the document root must be reachable for it.
  await chmod(dir, 0o755)
  await writeFile(join(docroot, 'index.html'), 'ok\n')
  await writeFile(join(docroot, 'search'), 'results\n')
  await chmod(docroot, 0o755)
  // Basic auth on /private, so that %u holds a user as on a real protected area ({SHA} needs no htpasswd tool).
  const htpasswd = join(dir, 'htpasswd')
  await writeFile(htpasswd, `visitor:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`, { mode: 0o644 })
  const port = await freePort()
  const logs = { vhost_combined: join(dir, 'access-vhost_combined.log'), combined: join(dir, 'access-combined.log') }
  const mod = (m: string): string => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`
  const conf = join(dir, 'apache2.conf')
  await writeFile(conf, [
    `ServerRoot ${dir}`,
    `DefaultRuntimeDir ${dir}`,
    `PidFile ${join(dir, 'apache2.pid')}`,
    `Mutex file:${dir} default`,
    mod('mpm_event'), mod('authz_core'), mod('authz_user'), mod('authn_core'), mod('authn_file'), mod('auth_basic'), mod('dir'), mod('mime'),
    'User www-data',
    'Group www-data',
    `Listen 127.0.0.1:${port}`,
    `Listen [::1]:${port}`,
    `ServerName ${SITE}`,
    `ErrorLog ${join(dir, 'error.log')}`,
    'LogLevel warn',
    APACHE_VHOST_COMBINED,
    APACHE_COMBINED,
    `CustomLog ${logs.vhost_combined} vhost_combined`,
    `CustomLog ${logs.combined} combined`,
    `DocumentRoot ${docroot}`,
    `<Directory ${docroot}>`,
    '  Require all granted',
    '</Directory>',
    '<Location /private>',
    '  AuthType Basic',
    '  AuthName "private"',
    `  AuthUserFile ${htpasswd}`,
    '  Require valid-user',
    '</Location>',
    'DirectoryIndex index.html',
    'TypesConfig /etc/mime.types'
  ].join('\n') + '\n')
  return await startServer('apache2', 'apache2', ['-d', dir, '-f', conf, '-DFOREGROUND'], port, logs, {})
}

export interface WebRequest {
  host: Loopback
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
  /** Source address to connect from (any 127.0.0.0/8 address works on Linux loopback: many distinct clients). */
  localAddress?: string
}

const UA = 'auditline-test/1.0 (+https://site-a.test/bot)'

/** The HTTP requests of the scenario, per client address family. */
export function webRequests (host: Loopback): WebRequest[] {
  const base = { Host: SITE, 'User-Agent': UA }
  return [
    { host, method: 'GET', path: '/', headers: base },
    {
      host,
      method: 'GET',
      path: '/search?ip=198.51.100.9&v6=2001:db8::3&q=caf%C3%A9',
      headers: { ...base, Referer: 'http://[2001:db8::2]:8080/page?from=192.0.2.44', 'X-Forwarded-For': '203.0.113.7, 2001:db8::1' }
    },
    { host, method: 'GET', path: '/missing.html', headers: { ...base, Referer: `http://${SITE}/` } },
    { host, method: 'POST', path: '/form', headers: { ...base, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=alice&from=192.0.2.99' },
    { host, method: 'HEAD', path: '/', headers: base },
    { host, method: 'GET', path: '/private', headers: { ...base, Authorization: `Basic ${Buffer.from('visitor:secret').toString('base64')}` } },
    // A quote and a Latin-1 byte (0xE4): servers escape both in the log.
    { host, method: 'GET', path: '/', headers: { ...base, 'User-Agent': 'Mozilla/5.0 "quoted" T\u00e4st' } }
  ]
}

/** Raw bytes over TCP: what browsers never send, but the logs hold anyway. */
export const RAW_REQUESTS: readonly string[] = [
  `GET /old HTTP/1.0\r\nHost: ${SITE}\r\n\r\n`,
  `GET http://${SITE}/absolute?via=198.51.100.77 HTTP/1.1\r\nHost: ${SITE}\r\nConnection: close\r\n\r\n`,
  // The start of a TLS ClientHello sent to a plain HTTP port.
  '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003\r\n\r\n'
]

export function send (port: number, r: WebRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: r.host, port, method: r.method, path: r.path, headers: { ...r.headers, Connection: 'close' }, setHost: false, ...(r.localAddress === undefined ? {} : { localAddress: r.localAddress }) }, res => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => { req.destroy(new Error(`${r.method} ${r.path} timed out`)) })
    req.end(r.body)
  })
}

export function sendRaw (port: number, host: Loopback, bytes: string): Promise<void> {
  return new Promise(resolve => {
    const s = connect({ host, port }, () => { s.end(Buffer.from(bytes, 'latin1')) })
    s.on('data', () => {})
    s.on('close', () => { resolve() })
    s.on('error', () => { resolve() })
    s.setTimeout(10_000, () => { s.destroy() })
  })
}

/** Sends the whole scenario (both address families) and returns how many requests were made (one log line each). */
export async function runWebScenario (port: number): Promise<number> {
  let n = 0
  for (const host of ['127.0.0.1', '::1'] as const) {
    for (const r of webRequests(host)) { await send(port, r); n++ }
    for (const raw of RAW_REQUESTS) { await sendRaw(port, host, raw); n++ }
  }
  return n
}
