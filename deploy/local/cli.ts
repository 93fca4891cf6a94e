// `tsx deploy/local/cli.ts up|down|status` — the npm scripts stack:up, stack:down and stack:status.
import { down, status, up, type StackStatus } from './stack.ts'

const USAGE = 'Usage: tsx deploy/local/cli.ts up|down|status'

function line (name: string, s: { healthy: boolean, detail: string, version?: string }, address: string | undefined): string {
  const mark = s.healthy ? 'healthy' : 'UNHEALTHY'
  return `${name.padEnd(14)} ${mark.padEnd(10)} ${(s.version ?? '?').padEnd(8)} ${(address ?? '-').padEnd(24)} ${s.detail}`
}

function report (st: StackStatus): string {
  return [
    `${'service'.padEnd(14)} ${'state'.padEnd(10)} ${'version'.padEnd(8)} ${'address'.padEnd(24)} detail`,
    line('kafka', st.kafka, st.kafka.brokers?.join(',')),
    line('elasticsearch', st.elasticsearch, st.elasticsearch.url)
  ].join('\n')
}

async function main (verb: string | undefined): Promise<number> {
  const started = Date.now()
  switch (verb) {
    case 'up': {
      // Progress goes to stderr so that stdout holds only the result.
      const info = await up({ log: (msg) => console.error(msg), javaHome: process.env.AUDITLINE_STACK_JAVA_HOME })
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      console.log([
        `${info.reused ? 'Already running' : 'Started'} (${seconds} s).`,
        `kafka          ${info.kafka.version.padEnd(8)} ${info.kafka.brokers.join(',')}  (pid ${info.kafka.pid})`,
        `elasticsearch  ${info.elasticsearch.version.padEnd(8)} ${info.elasticsearch.url}  (pid ${info.elasticsearch.pid})`,
        `state and logs ${info.stateDir}`
      ].join('\n'))
      return 0
    }
    case 'down':
      await down()
      console.log('Stopped.')
      return 0
    case 'status': {
      const st = await status()
      console.log(report(st))
      return st.kafka.healthy && st.elasticsearch.healthy ? 0 : 1
    }
    default:
      console.error(USAGE)
      return 2
  }
}

try {
  process.exitCode = await main(process.argv[2])
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err))
  process.exitCode = 1
}
