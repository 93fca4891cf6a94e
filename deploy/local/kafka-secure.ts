/**
 * A separate single Kafka broker (KRaft combined mode) with a `SASL_SSL` listener that requires TLS and
 * SCRAM-SHA-512, for the transport-security tests. It reuses the jars `deploy/local` fetched into
 * `.cache/kafka-<version>/libs`. Certificates come from the JDK's `keytool` (a throw-away CA signs the broker's
 * key, PKCS12 stores); the SCRAM credential is written into the metadata log by `kafka-storage format --add-scram`
 * before the first start, so the broker never runs without it. Inter-broker and controller traffic stay on
 * PLAINTEXT loopback listeners (one node: nothing crosses a network).
 *
 * @example
 * const broker = await startSecureKafka({ workDir: '/tmp/x', users: [{ name: 'auditline', password: 's3cret' }] })
 * // kafka: { brokers: [`127.0.0.1:${broker.saslSslPort}`], ssl: { caFile: broker.caFile }, sasl: { mechanism: 'scram-sha-512', … } }
 * await broker.stop()
 */
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KAFKA_VERSION } from './artifacts.ts'
import { checkKafka, kafkaClusterId } from './kafka.ts'
import { exists, freePorts, run, sleep, spawnDetached, stopGroup, tail } from './proc.ts'

export interface SecureKafkaOptions {
  /** Empty directory for stores, configuration, data and logs. */
  workDir: string
  /** SCRAM-SHA-512 users created before the first start. */
  users: Array<{ name: string, password: string }>
  /** Repository root whose `.cache/kafka-<version>/libs` holds the jars; default: this repository. */
  root?: string
  /** JDK home (needs `bin/java` and `bin/keytool`); default `JAVA_HOME` or Debian's OpenJDK 17. */
  javaHome?: string
}

export interface SecureKafka {
  /** The SASL_SSL listener: TLS + SCRAM-SHA-512 required. */
  saslSslPort: number
  /** PLAINTEXT loopback listener used between broker and controller (and by admin checks). */
  plainPort: number
  /** PEM of the CA that signed the broker certificate (clients trust it). */
  caFile: string
  stop: () => Promise<void>
}

async function javaHomeOf (preferred: string | undefined): Promise<string> {
  for (const home of [preferred, process.env.JAVA_HOME, '/usr/lib/jvm/java-17-openjdk-amd64']) {
    if (home !== undefined && home !== '' && await exists(join(home, 'bin', 'keytool'))) return home
  }
  throw new Error('No JDK with keytool found: install openjdk-17-jre-headless or pass javaHome.')
}

/** A CA and a broker key pair signed by it, certificate valid for 127.0.0.1 and localhost. */
async function makeStores (javaHome: string, dir: string): Promise<{ keystore: string, password: string, caFile: string }> {
  const keytool = join(javaHome, 'bin', 'keytool')
  const password = randomBytes(12).toString('hex')
  const ca = join(dir, 'ca.p12')
  const keystore = join(dir, 'broker.p12')
  const caFile = join(dir, 'ca.pem')
  const csr = join(dir, 'broker.csr')
  const cert = join(dir, 'broker.pem')
  const san = 'SAN=ip:127.0.0.1,dns:localhost'
  const common = ['-storetype', 'PKCS12', '-storepass', password, '-keypass', password]
  const opts = { timeoutMs: 60_000 }
  await run(keytool, ['-genkeypair', '-alias', 'ca', '-keyalg', 'RSA', '-keysize', '2048', '-dname', 'CN=auditline-test-ca', '-ext', 'bc:c', '-validity', '2', '-keystore', ca, ...common], opts)
  await run(keytool, ['-exportcert', '-rfc', '-alias', 'ca', '-keystore', ca, '-storepass', password, '-file', caFile], opts)
  await run(keytool, ['-genkeypair', '-alias', 'broker', '-keyalg', 'RSA', '-keysize', '2048', '-dname', 'CN=localhost', '-ext', san, '-validity', '2', '-keystore', keystore, ...common], opts)
  await run(keytool, ['-certreq', '-alias', 'broker', '-keystore', keystore, '-storepass', password, '-file', csr], opts)
  await run(keytool, ['-gencert', '-rfc', '-alias', 'ca', '-keystore', ca, '-storepass', password, '-infile', csr, '-outfile', cert, '-ext', san, '-validity', '2'], opts)
  // The chain must be complete in the key entry: the CA first, then the signed certificate replaces the self-signed one.
  await run(keytool, ['-importcert', '-noprompt', '-alias', 'ca', '-file', caFile, '-keystore', keystore, '-storepass', password, '-storetype', 'PKCS12'], opts)
  await run(keytool, ['-importcert', '-noprompt', '-alias', 'broker', '-file', cert, '-keystore', keystore, '-storepass', password, '-storetype', 'PKCS12'], opts)
  return { keystore, password, caFile }
}

export async function startSecureKafka (o: SecureKafkaOptions): Promise<SecureKafka> {
  const javaHome = await javaHomeOf(o.javaHome)
  const libsDir = join(o.root ?? join(import.meta.dirname, '..', '..'), '.cache', `kafka-${KAFKA_VERSION}`, 'libs')
  if (!await exists(libsDir)) throw new Error(`${libsDir} is missing: run \`npx tsx deploy/local/cli.ts up\` once to fetch Kafka.`)
  await mkdir(join(o.workDir, 'data'), { recursive: true })
  const stores = await makeStores(javaHome, o.workDir)
  const [plainPort = 0, saslSslPort = 0, controllerPort = 0] = await freePorts(3)
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${plainPort},SASL_SSL://127.0.0.1:${saslSslPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${plainPort},SASL_SSL://127.0.0.1:${saslSslPort}`,
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'sasl.enabled.mechanisms': 'SCRAM-SHA-512',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type': 'PKCS12',
    'ssl.keystore.location': stores.keystore,
    'ssl.keystore.password': stores.password,
    'ssl.key.password': stores.password,
    'log.dirs': join(o.workDir, 'data'),
    'num.partitions': 1,
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'auto.create.topics.enable': false,
    'group.initial.rebalance.delay.ms': 0
  }
  const propsFile = join(o.workDir, 'server.properties')
  await writeFile(propsFile, Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n', { mode: 0o600 })
  const log4jFile = join(o.workDir, 'log4j.properties')
  const serverLog = join(o.workDir, 'kafka.log')
  await writeFile(log4jFile, [
    'log4j.rootLogger=INFO, file', 'log4j.appender.file=org.apache.log4j.FileAppender', `log4j.appender.file.File=${serverLog}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout', 'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.state.change.logger=WARN', 'log4j.logger.kafka.request.logger=WARN', ''
  ].join('\n'))
  const java = join(javaHome, 'bin', 'java')
  const common = [`-Dlog4j.configuration=file:${log4jFile}`, '-Djava.awt.headless=true', '-cp', `${libsDir}/*`]
  const scram = o.users.flatMap(u => ['--add-scram', `SCRAM-SHA-512=[name=${u.name},password=${u.password}]`])
  await run(java, ['-Xmx128m', ...common, 'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(), '-c', propsFile, ...scram], { timeoutMs: 120_000 })
  const stdout = join(o.workDir, 'kafka.stdout.log')
  const pid = await spawnDetached(java, ['-Xms128m', '-Xmx384m', '-XX:+UseSerialGC', ...common, 'kafka.Kafka', propsFile], {
    cwd: o.workDir, env: { ...process.env, LC_ALL: 'C.UTF-8' }, logFile: stdout
  })
  const stop = async (): Promise<void> => { await stopGroup(pid, { graceMs: 10_000 }) }
  const deadline = Date.now() + 60_000
  for (;;) {
    const h = await checkKafka([`127.0.0.1:${plainPort}`], 3_000)
    if (h.healthy) break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`secure Kafka did not start: ${h.detail}\n${await tail(stdout)}\n${await tail(serverLog)}`)
    }
    await sleep(500)
  }
  return { saslSslPort, plainPort, caFile: stores.caFile, stop }
}
