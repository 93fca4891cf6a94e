/**
 * Throw-away PostgreSQL 15 and MariaDB servers for tests and fixture capture: Debian's binaries, our own
 * data directory under a temp dir, free loopback ports, logging configured the way docs/sources/*.md
 * asks for. The machine's own instances on 5432/3306 are never touched. Needs root (CI runs as root):
 * PostgreSQL runs as the `postgres` OS user, mariadbd as `mysql`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, chown, mkdir, readFile, writeFile, appendFile, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'

export const PG_BIN = '/usr/lib/postgresql/15/bin'
/** The password the scenarios give new roles/users: it must appear in no Kafka message. */
export const CANARY = 'S3cret-Canary-9f2'
/** The superuser password of the throw-away PostgreSQL cluster and the MariaDB admin account. */
export const ADMIN_PASSWORD = 'adm1n-pw-test'

export interface RunResult { code: number | null, stdout: string, stderr: string }

export function run (cmd: string, args: readonly string[], opts: { input?: string, env?: Record<string, string>, timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 60_000)
    child.on('error', err => { clearTimeout(timer); reject(err) })
    // A program that exits without reading its input (a failed initdb) must not crash the caller.
    child.stdin.on('error', () => {})
    child.on('close', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
    child.stdin.end(opts.input ?? '')
  })
}

async function mustRun (what: string, cmd: string, args: readonly string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${what} failed (exit ${String(r.code)}): ${r.stderr.slice(-2000)}`)
  return r
}

/** A TCP port free on both 127.0.0.1 and ::1 right now. */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const a = s.address()
        s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : 0) })
      })
    })
    const v6free = await new Promise<boolean>(resolve => {
      const s = createServer()
      s.once('error', () => { resolve(false) })
      s.listen(port, '::1', () => { s.close(() => { resolve(true) }) })
    })
    if (v6free) return port
  }
  throw new Error('no free port on 127.0.0.1 and ::1')
}

async function uidGid (user: string): Promise<{ uid: number, gid: number }> {
  const uid = Number((await mustRun('id -u', 'id', ['-u', user])).stdout.trim())
  const gid = Number((await mustRun('id -g', 'id', ['-g', user])).stdout.trim())
  return { uid, gid }
}

async function waitUntil (what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await fn().catch(() => false)) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

// ---------------------------------------------------------------- PostgreSQL

export interface PgServer {
  port: number
  /** Unix socket directory. */
  socketDir: string
  logs: { stderr: string, csvlog: string, jsonlog: string }
  logLinePrefix: string
  version: string
  /** Runs SQL through `psql` (`host`: 127.0.0.1, ::1 or the socket directory). */
  psql (o: { host: string, user: string, password?: string, db: string, sql: string }): Promise<RunResult>
  stop (): Promise<void>
}

export async function startPostgres (dir: string): Promise<PgServer> {
  if (process.getuid?.() !== 0) throw new Error('startPostgres needs root (it runs the server as the postgres OS user)')
  const { uid, gid } = await uidGid('postgres')
  // mkdtemp makes 0700 directories: the server users must be able to pass through.
  await chmod(dir, 0o711)
  const base = join(dir, 'pg')
  const data = join(base, 'data')
  const logDir = join(base, 'log')
  await mkdir(logDir, { recursive: true })
  await chown(base, uid, gid)
  await chown(logDir, uid, gid)
  const pwfile = join(base, 'pwfile')
  await writeFile(pwfile, ADMIN_PASSWORD + '\n', { mode: 0o600 })
  await chown(pwfile, uid, gid)
  const asPg = (args: string[]): string[] => ['-u', 'postgres', '--', ...args]
  await mustRun('initdb', 'runuser', asPg([`${PG_BIN}/initdb`, '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-locale', '--no-sync']))
  const port = await freePort()
  const logLinePrefix = '%m [%p] %q%u@%d %r '
  // The settings docs/sources/postgresql.md asks for, plus a private port, socket and log directory.
  await appendFile(join(data, 'postgresql.conf'), [
    '',
    `port = ${port}`,
    "listen_addresses = '127.0.0.1,::1'",
    `unix_socket_directories = '${base}'`,
    'logging_collector = on',
    "log_destination = 'stderr,csvlog,jsonlog'",
    `log_directory = '${logDir}'`,
    "log_filename = 'postgresql.log'",
    'log_rotation_age = 0',
    'log_rotation_size = 0',
    'log_file_mode = 0640',
    "log_timezone = 'UTC'",
    `log_line_prefix = '${logLinePrefix}'`,
    "log_statement = 'ddl'",
    'log_connections = on',
    'log_disconnections = on',
    "password_encryption = 'scram-sha-256'",
    'fsync = off',
    'shared_buffers = 16MB',
    ''
  ].join('\n'))
  await mustRun('pg_ctl start', 'runuser', asPg([`${PG_BIN}/pg_ctl`, '-D', data, '-l', join(base, 'pg_ctl.log'), '-w', '-t', '30', 'start']))
  const version = (await mustRun('postgres --version', `${PG_BIN}/postgres`, ['--version'])).stdout.trim()
  const server: PgServer = {
    port,
    socketDir: base,
    logs: { stderr: join(logDir, 'postgresql.log'), csvlog: join(logDir, 'postgresql.csv'), jsonlog: join(logDir, 'postgresql.json') },
    logLinePrefix,
    version,
    psql: o => run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=0', '-h', o.host, '-p', String(port), '-U', o.user, '-d', o.db, '-f', '-'], {
      input: o.sql,
      env: { PGPASSWORD: o.password ?? '', PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'psql' }
    }),
    async stop () {
      await run('runuser', asPg([`${PG_BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']))
    }
  }
  return server
}

// ---------------------------------------------------------------- MariaDB

export interface MariadbServer {
  port: number
  socket: string
  auditLog: string
  version: string
  /** Runs SQL through the `mariadb` client with `--force` (`host`: 127.0.0.1, ::1, or undefined for the socket as root). */
  sql (o: { host?: string, user: string, password?: string, db?: string, sql: string }): Promise<RunResult>
  stop (): Promise<void>
}

export async function startMariadb (dir: string): Promise<MariadbServer> {
  if (process.getuid?.() !== 0) throw new Error('startMariadb needs root (mariadbd switches to the mysql OS user)')
  const { uid, gid } = await uidGid('mysql')
  await chmod(dir, 0o711)
  const base = join(dir, 'mariadb')
  const data = join(base, 'data')
  await mkdir(base, { recursive: true })
  await chown(base, uid, gid)
  await mustRun('mariadb-install-db', 'mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'])
  const port = await freePort()
  const socket = join(base, 'mysqld.sock')
  const auditLog = join(base, 'server_audit.log')
  const child: ChildProcess = spawn('mariadbd', [
    '--no-defaults', `--datadir=${data}`, `--port=${port}`, `--socket=${socket}`, `--pid-file=${join(base, 'mysqld.pid')}`,
    '--bind-address=127.0.0.1,::1', '--user=mysql', '--skip-name-resolve', '--skip-log-bin', `--log-error=${join(base, 'error.log')}`,
    '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M', '--performance-schema=OFF',
    // The plugin settings docs/sources/mariadb.md asks for.
    '--plugin-load-add=server_audit', '--server_audit_logging=ON', '--server_audit_events=CONNECT,QUERY_DDL,QUERY_DCL',
    `--server_audit_file_path=${auditLog}`, '--server_audit_output_type=file'
  ], { stdio: 'ignore', env: { ...process.env, TZ: 'UTC' } })
  let exited = false
  child.once('exit', () => { exited = true })
  const client = (o: { host?: string, user: string, password?: string, db?: string, sql: string }): Promise<RunResult> => run('mariadb', [
    '--no-defaults', '--force', ...(o.host === undefined ? ['-S', socket] : ['-h', o.host, '-P', String(port), '--protocol=TCP']), '-u', o.user, ...(o.db === undefined ? [] : [o.db])
  ], { input: o.sql, env: { MYSQL_PWD: o.password ?? '' } })
  try {
    await waitUntil('mariadbd to accept connections', async () => !exited && (await client({ user: 'root', sql: 'SELECT 1' })).code === 0)
  } catch (err) {
    const log = await readFile(join(base, 'error.log'), 'utf8').catch(() => '')
    child.kill('SIGKILL')
    throw new Error(`${(err as Error).message}\n${log.slice(-3000)}`)
  }
  const version = (await client({ user: 'root', sql: 'SELECT VERSION()' })).stdout.trim().split('\n').pop() ?? ''
  await waitUntil('the audit log', async () => (await stat(auditLog)).isFile())
  return {
    port,
    socket,
    auditLog,
    version: `MariaDB ${version}`,
    sql: client,
    async stop () {
      if (exited) return
      const gone = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
      await gone
      clearTimeout(timer)
    }
  }
}

/** Starts both servers; if one fails, stops the other before throwing. */
export async function startDbServers (dir: string): Promise<{ pg: PgServer, maria: MariadbServer }> {
  const [pg, maria] = await Promise.allSettled([startPostgres(dir), startMariadb(dir)])
  if (pg.status === 'fulfilled' && maria.status === 'fulfilled') return { pg: pg.value, maria: maria.value }
  if (pg.status === 'fulfilled') await pg.value.stop()
  if (maria.status === 'fulfilled') await maria.value.stop()
  const reason: unknown = pg.status === 'rejected' ? pg.reason : (maria as PromiseRejectedResult).reason
  throw reason instanceof Error ? reason : new Error(String(reason))
}

// ---------------------------------------------------------------- scenarios

/** The DDL/DCL and logins the TOM promise is about, against PostgreSQL; returns once all clients finished. */
export async function runPostgresScenario (pg: PgServer): Promise<void> {
  const admin = { user: 'postgres', password: ADMIN_PASSWORD }
  await pg.psql({ ...admin, host: '127.0.0.1', db: 'postgres', sql: 'CREATE DATABASE shop;\n' })
  await pg.psql({
    ...admin,
    host: '::1',
    db: 'shop',
    sql: [
      'CREATE TABLE orders (id int, note text);',
      'ALTER TABLE orders ADD COLUMN total numeric;',
      `CREATE ROLE app_rw LOGIN PASSWORD '${CANARY}';`,
      // A multi-line statement whose password is on the second line, with '' inside the literal.
      `CREATE ROLE "app ""ro""" LOGIN\n  ENCRYPTED PASSWORD '${CANARY}''x';`,
      `ALTER ROLE app_rw PASSWORD $pw$${CANARY}$pw$;`,
      'GRANT SELECT, INSERT ON orders TO app_rw;',
      'REVOKE INSERT ON orders FROM app_rw;',
      'CREATE EXTENSION postgres_fdw;',
      "CREATE SERVER remote_db FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'x');",
      `CREATE USER MAPPING FOR app_rw SERVER remote_db OPTIONS (user 'app_rw', password '${CANARY}');`,
      // Fails (role exists): logged again with ERROR + STATEMENT.
      `CREATE ROLE app_rw PASSWORD '${CANARY}';`,
      // Syntax errors: never logged by log_statement, but by log_min_error_statement — with the secret.
      `ALTER ROLE app_rw PASSWORD ${CANARY};`,
      `CREATE ROLE typo PASSWRD '${CANARY}';`,
      'CREATE TABLE "Weird, ""name""" (\n  id int\n);',
      'DROP TABLE orders;',
      'DROP ROLE "app ""ro""";',
      ''
    ].join('\n')
  })
  await pg.psql({ user: 'app_rw', password: 'wrong-password', host: '127.0.0.1', db: 'shop', sql: 'SELECT 1;\n' })
  await pg.psql({ user: 'app_rw', password: CANARY, host: '::1', db: 'shop', sql: 'SELECT 1;\n' })
  await pg.psql({ user: 'nosuchuser', password: 'wrong-password', host: '::1', db: 'shop', sql: 'SELECT 1;\n' })
  await pg.psql({ user: 'postgres', host: pg.socketDir, db: 'postgres', sql: 'CREATE DATABASE tmpdb;\nDROP DATABASE tmpdb;\n' })
  await pg.psql({ ...admin, host: '127.0.0.1', db: 'postgres', sql: 'DROP DATABASE shop;\n' })
}

/** The same for MariaDB. */
export async function runMariadbScenario (m: MariadbServer): Promise<void> {
  await m.sql({
    user: 'root',
    sql: [
      `CREATE USER 'admin'@'127.0.0.1' IDENTIFIED BY '${ADMIN_PASSWORD}';`,
      "GRANT ALL ON *.* TO 'admin'@'127.0.0.1' WITH GRANT OPTION;",
      `CREATE USER 'admin'@'::1' IDENTIFIED BY '${ADMIN_PASSWORD}';`,
      "GRANT ALL ON *.* TO 'admin'@'::1' WITH GRANT OPTION;",
      ''
    ].join('\n')
  })
  const admin = { user: 'admin', password: ADMIN_PASSWORD }
  await m.sql({ ...admin, host: '127.0.0.1', sql: 'CREATE DATABASE shop;\n' })
  await m.sql({
    ...admin,
    host: '::1',
    db: 'shop',
    sql: [
      'CREATE TABLE orders (id int, note text);',
      'ALTER TABLE orders ADD COLUMN total decimal(10,2);',
      `CREATE USER 'app_rw'@'%' IDENTIFIED BY '${CANARY}';`,
      `CREATE USER 'app''ro'@'%' IDENTIFIED BY "${CANARY}\\\\'x";`,
      `CREATE USER 'app_via'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('${CANARY}');`,
      "GRANT SELECT, INSERT ON shop.orders TO 'app_rw'@'%';",
      "REVOKE INSERT ON shop.orders FROM 'app_rw'@'%';",
      'CREATE TABLE `Weird, \'name\'` (\n  id int\n);',
      // Fails (user exists): logged with its error number.
      `CREATE USER 'app_rw'@'%' IDENTIFIED BY '${CANARY}';`,
      // A syntax error: the plugin finds no quote to mask and logs the password as typed.
      `CREATE USER 'typo'@'%' IDENTIFIED BY ${CANARY};`,
      `GRANT SELECT ON shop.* TO 'app_new'@'%' IDENTIFIED BY '${CANARY}';`,
      'CREATE ROLE auditor;',
      "GRANT auditor TO 'app_rw'@'%';",
      "DROP USER 'app_via'@'%';",
      'DROP TABLE orders;',
      ''
    ].join('\n')
  })
  await m.sql({ user: 'app_rw', password: 'wrong-password', host: '127.0.0.1', sql: 'SELECT 1;\n' })
  await m.sql({ user: 'app_rw', password: CANARY, host: '::1', sql: 'SELECT 1;\n' })
  await m.sql({ user: 'nosuch', password: 'wrong-password', host: '::1', sql: 'SELECT 1;\n' })
  await m.sql({ user: 'root', sql: 'CREATE DATABASE tmpdb;\nDROP DATABASE tmpdb;\n' })
  await m.sql({ ...admin, host: '127.0.0.1', sql: 'DROP DATABASE shop;\n' })
}

/** Waits until `file` contains a line matching `re`. */
export async function waitForLine (file: string, re: RegExp, timeoutMs = 20_000): Promise<void> {
  await waitUntil(`${re.source} in ${file}`, async () => re.test(await readFile(file, 'utf8')), timeoutMs)
}
