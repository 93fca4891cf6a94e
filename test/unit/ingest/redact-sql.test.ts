import assert from 'node:assert/strict'
import { looksSecret, maskQuoted, redactSql, scrubSecrets } from '../../../ingest/common/redact-sql.ts'
import type { SqlDialect } from '../../../ingest/common/sql-lexer.ts'

const SECRET = 'S3cret-Canary-9f2'

/** Redacts and asserts that no piece of the secret survived; returns the redacted text. */
function clean (sql: string, dialect: SqlDialect): string {
  const r = redactSql(sql, dialect)
  for (const piece of ['S3cret', 'Canary', '9f2', 'hunter2']) assert.ok(!r.text.includes(piece), `"${piece}" left in: ${r.text}`)
  return r.text
}

describe('redactSql (PostgreSQL)', () => {
  const pg = (sql: string): string => clean(sql, 'postgresql')

  it('masks the literal after PASSWORD in CREATE ROLE and keeps the rest', () => {
    assert.equal(pg(`CREATE ROLE app_rw LOGIN PASSWORD '${SECRET}';`), "CREATE ROLE app_rw LOGIN PASSWORD '*****';")
  })

  it('masks ENCRYPTED and UNENCRYPTED PASSWORD with doubled quotes inside the literal', () => {
    assert.equal(pg(`CREATE ROLE "app ""ro""" LOGIN\n  ENCRYPTED PASSWORD '${SECRET}''x';`), 'CREATE ROLE "app ""ro""" LOGIN\n  ENCRYPTED PASSWORD \'*****\';')
    assert.equal(pg(`ALTER ROLE a UNENCRYPTED PASSWORD 'it''s ${SECRET}'`), "ALTER ROLE a UNENCRYPTED PASSWORD '*****'")
  })

  it('masks dollar-quoted passwords, tagged and untagged, and keeps what follows', () => {
    assert.equal(pg(`ALTER ROLE app_rw PASSWORD $pw$${SECRET}$pw$;`), "ALTER ROLE app_rw PASSWORD '*****';")
    assert.equal(pg(`ALTER ROLE app_rw WITH PASSWORD $$${SECRET}'$$ LOGIN`), "ALTER ROLE app_rw WITH PASSWORD '*****' LOGIN")
    // A $tag$ inside the value does not close a different tag.
    assert.equal(pg(`ALTER ROLE r PASSWORD $a$x$b$${SECRET}$b$y$a$ CREATEDB`), "ALTER ROLE r PASSWORD '*****' CREATEDB")
  })

  it('masks E-strings with backslash escapes and U& strings', () => {
    assert.equal(pg(`ALTER ROLE r PASSWORD E'${SECRET}\\'still secret' LOGIN`), "ALTER ROLE r PASSWORD '*****' LOGIN")
    assert.equal(pg(`ALTER ROLE r PASSWORD U&'${SECRET}\\0041'`), "ALTER ROLE r PASSWORD '*****'")
  })

  it('masks to the later end when the backslash rule is uncertain (standard_conforming_strings)', () => {
    // With standard_conforming_strings=off the literal would run to the next quote: mask both readings.
    const r = redactSql(`ALTER ROLE r PASSWORD '${SECRET}\\' hunter2' VALID UNTIL 'infinity'`, 'postgresql')
    assert.ok(r.text.startsWith("ALTER ROLE r PASSWORD '*****'"), r.text)
    assert.ok(!r.text.includes('S3cret') && !r.text.includes('hunter2'), r.text)
  })

  it('masks PASSWORD options of CREATE USER MAPPING and CREATE/ALTER SERVER, quoted option names too', () => {
    assert.equal(pg(`CREATE USER MAPPING FOR app_rw SERVER remote_db OPTIONS (user 'app_rw', password '${SECRET}');`),
      "CREATE USER MAPPING FOR app_rw SERVER remote_db OPTIONS (user '*****', password '*****');")
    assert.equal(pg(`ALTER USER MAPPING FOR u SERVER s OPTIONS (SET "password" '${SECRET}')`), "ALTER USER MAPPING FOR u SERVER s OPTIONS (SET \"password\" '*****')")
    assert.equal(pg(`CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db1', password '${SECRET}')`),
      "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '*****', password '*****')")
  })

  it('masks whole conninfo strings and URIs that carry a password', () => {
    assert.equal(pg(`CREATE SUBSCRIPTION s CONNECTION 'host=a user=r password=${SECRET}' PUBLICATION p`), "CREATE SUBSCRIPTION s CONNECTION '*****' PUBLICATION p")
    assert.equal(pg(`SELECT dblink_connect('postgresql://r:${SECRET}@db1/x')`), "SELECT dblink_connect('*****')")
  })

  it('masks a password typed without quotes (a failed statement is logged too) up to the next blank', () => {
    assert.equal(pg(`ALTER ROLE app_rw PASSWORD ${SECRET};`), "ALTER ROLE app_rw PASSWORD '*****';")
  })

  it('masks every literal of a role statement, so a typo like PASSWRD does not leak', () => {
    assert.equal(pg(`CREATE ROLE typo PASSWRD '${SECRET}';`), "CREATE ROLE typo PASSWRD '*****';")
  })

  it('masks a password set inside a DO block or function body whole', () => {
    assert.equal(pg(`DO $$BEGIN EXECUTE 'ALTER ROLE x PASSWORD ''${SECRET}'''; END$$`), "DO '*****'")
  })

  it('masks comments that mention a password', () => {
    assert.equal(pg(`CREATE TABLE t (a int) /* password: ${SECRET} */`), 'CREATE TABLE t (a int) /* ***** */')
    assert.equal(pg(`CREATE TABLE t (a int) -- pw ${SECRET} password`), 'CREATE TABLE t (a int) /* ***** */')
  })

  it('masks an unterminated literal to the end (statements cut by a length limit)', () => {
    assert.equal(pg(`CREATE ROLE r PASSWORD '${SECRET}`), "CREATE ROLE r PASSWORD '*****'")
  })

  it('leaves statements without credentials unchanged', () => {
    for (const sql of [
      'CREATE TABLE orders (id int, note text DEFAULT \'none\');',
      'CREATE TABLE "Weird, ""name""" (\n  id int\n);',
      'GRANT SELECT, INSERT ON orders TO app_rw;',
      'ALTER ROLE app_rw PASSWORD NULL',
      'DROP DATABASE shop;',
      "COMMENT ON TABLE t IS 'orders of the shop'"
    ]) {
      const r = redactSql(sql, 'postgresql')
      assert.equal(r.text, sql)
      assert.equal(r.changed, false)
    }
  })

  it('does not take a password keyword inside an identifier or a string for a trigger', () => {
    assert.equal(pg('CREATE TABLE "password" (a text)'), 'CREATE TABLE "password" (a text)')
    assert.equal(pg('ALTER TABLE users ADD COLUMN password_hash text'), 'ALTER TABLE users ADD COLUMN password_hash text')
    assert.equal(pg('CREATE TABLE users (password text NOT NULL)'), 'CREATE TABLE users (password text NOT NULL)')
  })

  it('redacts each statement of a multi-statement string on its own', () => {
    assert.equal(pg(`CREATE TABLE t (a text DEFAULT 'x'); ALTER ROLE r PASSWORD '${SECRET}'`), "CREATE TABLE t (a text DEFAULT 'x'); ALTER ROLE r PASSWORD '*****'")
  })

  it('reports the masked values so that other fields can be scrubbed', () => {
    const r = redactSql(`ALTER ROLE r PASSWORD '${SECRET}''x'`, 'postgresql')
    assert.ok(r.secrets.includes(`${SECRET}'x`))
    assert.equal(r.credential, true)
    assert.equal(scrubSecrets(`near "${SECRET}'x"`, r.secrets), 'near "*****"')
  })
})

describe('redactSql (MariaDB)', () => {
  const my = (sql: string): string => clean(sql, 'mariadb')

  it('masks IDENTIFIED BY and keeps account names', () => {
    assert.equal(my(`CREATE USER 'app_rw'@'%' IDENTIFIED BY '${SECRET}'`), "CREATE USER 'app_rw'@'%' IDENTIFIED BY '*****'")
    assert.equal(my(`ALTER USER app_rw@localhost IDENTIFIED BY "${SECRET}"`), "ALTER USER app_rw@localhost IDENTIFIED BY '*****'")
  })

  it('masks IDENTIFIED BY PASSWORD hashes and GRANT … IDENTIFIED BY', () => {
    assert.equal(my(`ALTER USER 'u'@'%' IDENTIFIED BY PASSWORD '*${SECRET}'`), "ALTER USER 'u'@'%' IDENTIFIED BY PASSWORD '*****'")
    assert.equal(my(`GRANT SELECT ON shop.* TO 'app_new'@'%' IDENTIFIED BY '${SECRET}'`), "GRANT SELECT ON shop.* TO 'app_new'@'%' IDENTIFIED BY '*****'")
  })

  it('masks backslash-escaped quotes and doubled quotes inside the literal', () => {
    assert.equal(my(`CREATE USER 'app''ro'@'%' IDENTIFIED BY "${SECRET}\\\\'x\\"y"`), "CREATE USER 'app''ro'@'%' IDENTIFIED BY '*****'")
    assert.equal(my(`CREATE USER u IDENTIFIED BY '${SECRET}\\' more'`), "CREATE USER u IDENTIFIED BY '*****'")
  })

  it('masks IDENTIFIED VIA … USING, with PASSWORD() and with several plugins', () => {
    assert.equal(my(`CREATE USER 'e'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${SECRET}')`), "CREATE USER 'e'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('*****')")
    assert.equal(my(`CREATE USER u IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('${SECRET}')`),
      "CREATE USER u IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('*****')")
    assert.equal(my(`CREATE USER u IDENTIFIED WITH mysql_native_password AS '*${SECRET}'`), "CREATE USER u IDENTIFIED WITH mysql_native_password AS '*****'")
  })

  it('masks SET PASSWORD in every form', () => {
    assert.equal(my(`SET PASSWORD FOR 'app_rw'@'%' = PASSWORD('${SECRET}')`), "SET PASSWORD FOR 'app_rw'@'%' = PASSWORD('*****')")
    assert.equal(my(`SET PASSWORD = OLD_PASSWORD('${SECRET}')`), "SET PASSWORD = OLD_PASSWORD('*****')")
    assert.equal(my(`SET PASSWORD FOR u@h = '*${SECRET}'`), "SET PASSWORD FOR u@h = '*****'")
  })

  it('masks character-set introducers and hex literals', () => {
    assert.equal(my(`CREATE USER u IDENTIFIED BY _utf8mb4'${SECRET}'`), "CREATE USER u IDENTIFIED BY '*****'")
    assert.equal(my(`CREATE USER u IDENTIFIED BY X'${Buffer.from(SECRET).toString('hex')}'`).includes('*****'), true)
  })

  it('masks CREATE SERVER options and CHANGE MASTER passwords', () => {
    assert.equal(my(`CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1', PASSWORD '${SECRET}')`),
      "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '*****', PASSWORD '*****')")
    assert.equal(my(`CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD='${SECRET}'`), "CHANGE MASTER TO MASTER_HOST='*****', MASTER_PASSWORD='*****'")
  })

  it('tokenizes executable comments: a password inside /*!50001 … */ is masked', () => {
    assert.equal(my(`/*!50001 CREATE USER u IDENTIFIED BY '${SECRET}' */`), "/*!50001 CREATE USER u IDENTIFIED BY '*****' */")
  })

  it('masks a bare password after IDENTIFIED BY (what the plugin logs for a syntax error)', () => {
    assert.equal(my(`CREATE USER 'typo'@'%' IDENTIFIED BY ${SECRET}`), "CREATE USER 'typo'@'%' IDENTIFIED BY '*****'")
  })

  it("leaves the plugin's own ***** mask and statements without credentials as they are", () => {
    for (const sql of [
      "CREATE USER 'app_rw'@'%' IDENTIFIED BY *****",
      "CREATE USER 'app_via'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(*****)",
      "GRANT SELECT, INSERT ON shop.orders TO 'app_rw'@'%'",
      "CREATE TABLE `Weird, 'name'` (\n  id int\n)",
      'ALTER USER u PASSWORD EXPIRE'
    ]) assert.equal(redactSql(sql, 'mariadb').text, sql)
  })
})

describe('maskQuoted and looksSecret', () => {
  it('masks quoted parts of a message but keeps the names the statement acts on', () => {
    assert.equal(maskQuoted('syntax error at or near "S3cret"'), 'syntax error at or near "*****"')
    assert.equal(maskQuoted('role "app_rw" already exists', new Set(['app_rw'])), 'role "app_rw" already exists')
  })

  it('recognises lines that may carry a credential', () => {
    assert.equal(looksSecret(`garbage PASSWORD '${SECRET}'`, 'postgresql'), true)
    assert.equal(looksSecret('2026-11-29 checkpoint complete', 'postgresql'), false)
  })
})
