/**
 * A 3-node Kafka cluster in KRaft combined mode (each node broker + controller, three voters) on loopback ports,
 * heaps pinned small, for fault tests: replication factor 3 and `min.insync.replicas=2` as in production
 * (deploy/kafka/topics.md), so that one node may die without losing an acknowledged write. Reuses the jars
 * `deploy/local` fetched into `.cache/kafka-<version>/libs`. Separate from the shared single-broker stack.
 *
 * @example
 * const cluster = await startKafkaCluster({ workDir: '/tmp/kc' })
 * await cluster.kill(2)        // kill -9 node 2
 * await cluster.restart(2)     // same data directory, same ports
 * await cluster.stop()
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { KAFKA_VERSION } from './artifacts.ts'
import { checkKafka, kafkaClusterId } from './kafka.ts'
import { canConnect, exists, freePorts, isAlive, run, sleep, spawnDetached, stopGroup, tail } from './proc.ts'

export interface KafkaClusterOptions {
  /** Empty directory for the nodes' configuration, data and logs. */
  workDir: string
  /** Repository root whose `.cache/kafka-<version>/libs` holds the jars; default: this repository. */
  root?: string
  /** JDK/JRE home; default `JAVA_HOME` or Debian's OpenJDK 17. */
  javaHome?: string
  /** Maximum heap per node, e.g. `256m` (three JVMs share a small machine). */
  heap?: string
}

export interface KafkaCluster {
  /** Bootstrap list of all three nodes. */
  brokers: string[]
  /** Node ids 1..3 → `127.0.0.1:<port>`. */
  brokerOf: (node: number) => string
  /** SIGKILL to node `node` (a crash: no shutdown, no flush). */
  kill: (node: number) => Promise<void>
  /** Starts node `node` again on its data directory. */
  restart: (node: number) => Promise<void>
  /** Resolves when all three brokers are registered and unfenced. */
  waitHealthy: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

interface Node { id: number, port: number, controllerPort: number, dir: string, args: string[], pid: number }

export async function startKafkaCluster (o: KafkaClusterOptions): Promise<KafkaCluster> {
  let javaHome: string | undefined
  for (const home of [o.javaHome, process.env.JAVA_HOME, '/usr/lib/jvm/java-17-openjdk-amd64']) {
    if (home !== undefined && home !== '' && await exists(join(home, 'bin', 'java'))) { javaHome = home; break }
  }
  if (javaHome === undefined) throw new Error('No Java found: install openjdk-17-jre-headless or pass javaHome.')
  const java = join(javaHome, 'bin', 'java')
  const libsDir = join(o.root ?? join(import.meta.dirname, '..', '..'), '.cache', `kafka-${KAFKA_VERSION}`, 'libs')
  if (!await exists(libsDir)) throw new Error(`${libsDir} is missing: run \`npx tsx deploy/local/cli.ts up\` once to fetch Kafka.`)
  const ports = await freePorts(6)
  const heap = o.heap ?? '256m'
  const clusterId = kafkaClusterId()
  const nodes: Node[] = [1, 2, 3].map(id => ({ id, port: ports[id - 1] ?? 0, controllerPort: ports[id + 2] ?? 0, dir: join(o.workDir, `node-${id}`), args: [], pid: 0 }))
  const voters = nodes.map(n => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')

  for (const n of nodes) {
    await mkdir(join(n.dir, 'data'), { recursive: true })
    const props: Record<string, string | number | boolean> = {
      'process.roles': 'broker,controller',
      'node.id': n.id,
      'controller.quorum.voters': voters,
      listeners: `PLAINTEXT://127.0.0.1:${n.port},CONTROLLER://127.0.0.1:${n.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${n.port}`,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'log.dirs': join(n.dir, 'data'),
      'num.partitions': 3,
      'default.replication.factor': 3,
      'min.insync.replicas': 2,
      'offsets.topic.replication.factor': 3,
      'transaction.state.log.replication.factor': 3,
      'transaction.state.log.min.isr': 2,
      'unclean.leader.election.enable': false,
      'auto.create.topics.enable': false,
      'group.initial.rebalance.delay.ms': 0,
      // A killed node is fenced after this long: shorter than the 9 s default so that leaders move quickly in tests.
      'broker.session.timeout.ms': 4000,
      'broker.heartbeat.interval.ms': 1000
    }
    const propsFile = join(n.dir, 'server.properties')
    await writeFile(propsFile, Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n')
    const log4jFile = join(n.dir, 'log4j.properties')
    await writeFile(log4jFile, [
      'log4j.rootLogger=INFO, file', 'log4j.appender.file=org.apache.log4j.FileAppender', `log4j.appender.file.File=${join(n.dir, 'kafka.log')}`,
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout', 'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.state.change.logger=WARN', 'log4j.logger.kafka.request.logger=WARN', ''
    ].join('\n'))
    const common = [`-Dlog4j.configuration=file:${log4jFile}`, '-Djava.awt.headless=true', '-cp', `${libsDir}/*`]
    await run(java, ['-Xmx128m', ...common, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile], { timeoutMs: 120_000 })
    n.args = [`-Xms${heap}`, `-Xmx${heap}`, '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', ...common, 'kafka.Kafka', propsFile]
  }

  const start = async (n: Node): Promise<void> => {
    n.pid = await spawnDetached(java, n.args, { cwd: n.dir, env: { ...process.env, LC_ALL: 'C.UTF-8' }, logFile: join(n.dir, 'kafka.stdout.log') })
  }
  const node = (id: number): Node => {
    const n = nodes[id - 1]
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }
  const brokers = nodes.map(n => `127.0.0.1:${n.port}`)
  const waitHealthy = async (timeoutMs = 90_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      // Every node must accept connections (a just-killed node stays listed as a broker until it is fenced).
      const h = await checkKafka(brokers, 3_000)
      if (h.healthy && / 3 broker\(s\)/.test(h.detail)) return
      if (Date.now() > deadline) {
        const logs = await Promise.all(nodes.map(async n => `node ${n.id}:\n${await tail(join(n.dir, 'kafka.stdout.log'), 15)}`))
        throw new Error(`the 3-node cluster is not healthy: ${h.detail}\n${logs.join('\n')}`)
      }
      await sleep(500)
    }
  }
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => { if (n.pid > 0) await stopGroup(n.pid, { graceMs: 10_000 }).catch(() => undefined) }))
  }

  try {
    for (const n of nodes) await start(n)
    await waitHealthy()
  } catch (err) {
    await stop()
    throw err
  }
  return {
    brokers,
    brokerOf: id => `127.0.0.1:${node(id).port}`,
    async kill (id) {
      const n = node(id)
      try { process.kill(-n.pid, 'SIGKILL') } catch { /* already gone */ }
      // The group leader turns zombie before the JVM's other threads have exited and closed its sockets: wait for the port too.
      while (await isAlive(n.pid) || await canConnect('127.0.0.1', n.port, 500)) await sleep(50)
    },
    async restart (id) { await start(node(id)) },
    waitHealthy,
    stop
  }
}
