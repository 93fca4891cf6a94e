// A single-node Kafka broker in KRaft combined mode (broker + controller in one JVM), on loopback only.
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { canConnect, run, spawnDetached } from './proc.ts'

/**
 * A KRaft cluster id: 16 random bytes in base64url, drawn again while it starts with `-`, as Kafka's own
 * `Uuid.randomUuid` does — `kafka-storage format -t -Abc…` takes such an id for an option and refuses to start
 * (1 start in 64 failed that way).
 */
export function kafkaClusterId (): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

export interface KafkaLayout {
  javaHome: string
  libsDir: string
  /** Fresh per run: server.properties, log4j.properties and the data directory. */
  workDir: string
  logsDir: string
  port: number
  controllerPort: number
}

export interface Health { healthy: boolean, detail: string }

export function kafkaLogFiles (logsDir: string): { server: string, stdout: string } {
  return { server: join(logsDir, 'kafka.log'), stdout: join(logsDir, 'kafka.stdout.log') }
}

function serverProperties (l: KafkaLayout): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@127.0.0.1:${l.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${l.port},CONTROLLER://127.0.0.1:${l.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${l.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': join(l.workDir, 'data'),
    'num.partitions': 3,
    // One broker: internal topics cannot have more than one replica.
    'offsets.topic.replication.factor': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    // Tests create their own topics; a typo must fail instead of creating a topic.
    'auto.create.topics.enable': false,
    // Tests join consumer groups often; the default 3 s delay would slow every one of them.
    'group.initial.rebalance.delay.ms': 0
  }
  return Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n'
}

function log4jProperties (logFile: string): string {
  return [
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.Append=true',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // Per-partition state changes and request logs would drown the useful lines.
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.request.logger=WARN',
    ''
  ].join('\n')
}

/** Writes the configuration and formats the storage with a random cluster id. Returns the java arguments to start it. */
export async function prepareKafka (l: KafkaLayout): Promise<string[]> {
  await mkdir(join(l.workDir, 'data'), { recursive: true })
  const propsFile = join(l.workDir, 'server.properties')
  const log4jFile = join(l.workDir, 'log4j.properties')
  await writeFile(propsFile, serverProperties(l))
  await writeFile(log4jFile, log4jProperties(kafkaLogFiles(l.logsDir).server))
  const common = [`-Dlog4j.configuration=file:${log4jFile}`, '-Djava.awt.headless=true', '-cp', `${l.libsDir}/*`]
  // A Kafka cluster id is 16 random bytes in URL-safe base64 without padding (22 characters).
  const clusterId = kafkaClusterId()
  await run(join(l.javaHome, 'bin', 'java'), ['-Xmx256m', ...common, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile], { timeoutMs: 120_000 })
  return ['-Xms256m', '-Xmx512m', '-XX:+UseG1GC', ...common, 'kafka.Kafka', propsFile]
}

export async function startKafka (l: KafkaLayout, javaArgs: string[]): Promise<number> {
  return await spawnDetached(join(l.javaHome, 'bin', 'java'), javaArgs, {
    cwd: l.workDir,
    env: { ...process.env, LC_ALL: 'C.UTF-8' },
    logFile: kafkaLogFiles(l.logsDir).stdout
  })
}

/** Speaks the Kafka protocol: the broker answers a metadata request and lists itself (KRaft lists only unfenced
 * brokers, so this also means it has registered with its controller). */
export async function checkKafka (brokers: string[], timeoutMs = 5_000): Promise<Health> {
  // A plain TCP probe first: "nothing listens" is a clearer answer than a client-library timeout.
  for (const broker of brokers) {
    const [host = '', port = ''] = broker.split(':')
    if (!await canConnect(host, Number(port))) return { healthy: false, detail: `nothing accepts TCP connections on ${broker}` }
  }
  const kafka = new Kafka({
    clientId: 'auditline-stack-check',
    brokers,
    connectionTimeout: Math.min(timeoutMs, 2_000),
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING
  })
  const admin = kafka.admin()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    const cluster = await Promise.race([(async () => {
      await admin.connect()
      return await admin.describeCluster()
    })(), timeout])
    if (cluster.brokers.length === 0) return { healthy: false, detail: 'the broker lists no registered brokers yet' }
    return { healthy: true, detail: `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s), controller ${cluster.controller ?? 'none'}` }
  } catch (err) {
    return { healthy: false, detail: `Kafka protocol check failed: ${err instanceof Error ? err.message : String(err)}` }
  } finally {
    clearTimeout(timer)
    await admin.disconnect().catch(() => undefined)
  }
}
