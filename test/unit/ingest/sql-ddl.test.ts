import assert from 'node:assert/strict'
import { classifyStatement } from '../../../ingest/common/sql-ddl.ts'

describe('classifyStatement', () => {
  it('names database operations with their own actions and event types', () => {
    const c = classifyStatement('CREATE DATABASE shop', 'postgresql')
    assert.equal(c?.action, 'db_create_database')
    assert.deepEqual(c?.type, ['creation'])
    assert.deepEqual(c?.category, ['database'])
    assert.deepEqual(c?.objects, ['shop'])
    assert.equal(c?.operation, 'CREATE DATABASE')
    assert.equal(classifyStatement('DROP DATABASE IF EXISTS "Shop" WITH (FORCE)', 'postgresql')?.action, 'db_drop_database')
    assert.deepEqual(classifyStatement('DROP DATABASE IF EXISTS "Shop" WITH (FORCE)', 'postgresql')?.objects, ['Shop'])
    assert.deepEqual(classifyStatement('ALTER DATABASE shop RENAME TO store', 'postgresql')?.type, ['change'])
  })

  it('folds unquoted PostgreSQL names to lower case and keeps quoted ones and MariaDB names as written', () => {
    assert.deepEqual(classifyStatement('ALTER TABLE IF EXISTS ONLY public.Orders ADD COLUMN x int', 'postgresql')?.objects, ['public.orders'])
    assert.deepEqual(classifyStatement('CREATE TABLE "Weird, ""name""" (\n  id int\n);', 'postgresql')?.objects, ['Weird, "name"'])
    assert.deepEqual(classifyStatement("CREATE TABLE `Weird, 'name'` (id int)", 'mariadb')?.objects, ["Weird, 'name'"])
    assert.deepEqual(classifyStatement('CREATE TABLE Orders (id int)', 'mariadb')?.objects, ['Orders'])
  })

  it('treats SCHEMA as DATABASE in MariaDB only', () => {
    assert.equal(classifyStatement('CREATE SCHEMA s', 'mariadb')?.action, 'db_create_database')
    assert.equal(classifyStatement('CREATE SCHEMA s', 'postgresql')?.action, 'db_create_schema')
  })

  it('marks role and user statements as iam and names the target', () => {
    const c = classifyStatement("CREATE USER 'app_rw'@'%' IDENTIFIED BY *****", 'mariadb')
    assert.equal(c?.action, 'db_create_user')
    assert.deepEqual(c?.category, ['database', 'iam'])
    assert.deepEqual(c?.objects, ['app_rw@%'])
    assert.deepEqual(c?.targetUsers, ['app_rw'])
    assert.equal(classifyStatement('CREATE GROUP admins', 'postgresql')?.action, 'db_create_role')
    assert.deepEqual(classifyStatement("DROP USER 'a'@'%', 'b'@'localhost'", 'mariadb')?.targetUsers, ['a', 'b'])
    const sp = classifyStatement("SET PASSWORD FOR 'app_rw'@'%' = PASSWORD(*****)", 'mariadb')
    assert.equal(sp?.action, 'db_alter_user')
    assert.equal(sp?.operation, 'SET PASSWORD')
  })

  it('reads GRANT and REVOKE: privileges, object, object type and grantees', () => {
    const g = classifyStatement('GRANT SELECT, INSERT (note) ON TABLE orders TO app_rw, PUBLIC WITH GRANT OPTION', 'postgresql')
    assert.equal(g?.action, 'db_grant')
    assert.deepEqual(g?.privileges, ['SELECT', 'INSERT'])
    assert.deepEqual(g?.objects, ['orders'])
    assert.equal(g?.objectType, 'table')
    assert.deepEqual(g?.targetUsers, ['app_rw'])
    const r = classifyStatement("REVOKE INSERT ON shop.orders FROM 'app_rw'@'%'", 'mariadb')
    assert.equal(r?.action, 'db_revoke')
    assert.deepEqual(r?.targetUsers, ['app_rw'])
    assert.equal(classifyStatement("GRANT ALL ON *.* TO 'admin'@'::1'", 'mariadb')?.objectType, 'global')
    assert.equal(classifyStatement("GRANT SELECT ON shop.* TO 'u'@'%'", 'mariadb')?.objectType, 'database')
    assert.equal(classifyStatement('GRANT ALL ON ALL TABLES IN SCHEMA public TO bob', 'postgresql')?.objectType, 'schema')
    assert.equal(classifyStatement("REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'u'@'h'", 'mariadb')?.objectType, 'global')
  })

  it('reads role grants (no ON) as grants of roles', () => {
    const g = classifyStatement('GRANT auditor, reader TO alice WITH ADMIN OPTION', 'postgresql')
    assert.equal(g?.objectType, 'role')
    assert.deepEqual(g?.objects, ['auditor', 'reader'])
    assert.deepEqual(g?.targetUsers, ['alice'])
  })

  it('gives other object types db_ddl with operation, type and name', () => {
    const c = classifyStatement('CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql', 'postgresql')
    assert.equal(c?.action, 'db_ddl')
    assert.equal(c?.operation, 'CREATE FUNCTION')
    assert.equal(c?.objectType, 'function')
    assert.deepEqual(c?.objects, ['f'])
    const m = classifyStatement('CREATE USER MAPPING FOR app_rw SERVER remote_db OPTIONS (user \'x\')', 'postgresql')
    assert.equal(m?.objectType, 'user_mapping')
    assert.deepEqual(m?.targetUsers, ['app_rw'])
    assert.equal(classifyStatement('CREATE DEFAULT CONVERSION c FOR \'a\' TO \'b\' FROM f', 'postgresql')?.action, 'db_ddl')
  })

  it('skips MariaDB DEFINER clauses, SET STATEMENT and executable comments', () => {
    assert.equal(classifyStatement('CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT 1', 'mariadb')?.action, 'db_create_view')
    assert.equal(classifyStatement('SET STATEMENT max_statement_time=1 FOR DROP TABLE t', 'mariadb')?.action, 'db_drop_table')
    assert.equal(classifyStatement('/*!40000 ALTER TABLE `t` DISABLE KEYS */', 'mariadb')?.action, 'db_alter_table')
  })

  it('finds the DDL in a multi-statement string and lists every dropped object', () => {
    const c = classifyStatement('BEGIN; DROP TABLE a, b; COMMIT', 'postgresql')
    assert.equal(c?.action, 'db_drop_table')
    assert.deepEqual(c?.objects, ['a', 'b'])
  })

  it('truncate and rename are their own verbs', () => {
    assert.equal(classifyStatement('TRUNCATE TABLE t', 'mariadb')?.action, 'db_truncate_table')
    assert.deepEqual(classifyStatement('TRUNCATE TABLE t', 'mariadb')?.type, ['deletion'])
    assert.equal(classifyStatement('RENAME TABLE a TO b', 'mariadb')?.action, 'db_rename_table')
  })

  it('returns nothing for statements that are not DDL or DCL', () => {
    for (const sql of ['SELECT 1', 'INSERT INTO t VALUES (1)', 'SET search_path = x', 'BEGIN', 'USE shop', '']) {
      assert.equal(classifyStatement(sql, 'postgresql'), undefined, sql)
    }
  })
})
