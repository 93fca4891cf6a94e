// Fetches the Kafka broker classpath and the Elasticsearch integ-test distribution from Maven Central (through the
// machine's Maven and its ~/.m2 repository) into <root>/.cache/, once. A marker file written last makes a later run
// skip both the download and the unpacking; an interrupted fetch leaves no marker and is redone from scratch.
import { chmod, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exists, run } from './proc.ts'

export const KAFKA_VERSION = '3.9.1'
export const ELASTICSEARCH_VERSION = '8.19.2'

const POM = join(dirname(fileURLToPath(import.meta.url)), 'kafka', 'pom.xml')
const ES_ARTIFACT = `org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ELASTICSEARCH_VERSION}:zip`
const MARKER = '.auditline-complete'

type Log = (msg: string) => void

async function mvn (args: string[]): Promise<void> {
  // -B: no progress bars or colours in captured output; the pom only pins the dependency plugin.
  await run('mvn', ['-B', '-q', '-f', POM, ...args]).catch((err: unknown) => {
    const reason = err instanceof Error ? err.message : String(err)
    throw new Error(`Maven could not fetch the local stack's artifacts (is mvn on PATH and Maven Central reachable?)\n${reason}`, { cause: err })
  })
}

/** Returns the directory holding the Kafka broker jars (to be used as `<dir>/*` on a classpath). */
export async function ensureKafkaLibs (cacheDir: string, log: Log): Promise<string> {
  const home = join(cacheDir, `kafka-${KAFKA_VERSION}`)
  const libs = join(home, 'libs')
  if (await exists(join(home, MARKER))) return libs
  log(`Fetching the Kafka ${KAFKA_VERSION} broker classpath with Maven (first run only)…`)
  const tmp = `${home}.tmp-${process.pid}`
  await rm(home, { recursive: true, force: true })
  await rm(tmp, { recursive: true, force: true })
  await mvn(['dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${join(tmp, 'libs')}`])
  await kafkaVersionOf(join(tmp, 'libs')) // fails early if the broker jar is missing
  await writeFile(join(tmp, MARKER), `${new Date().toISOString()}\n`)
  await rename(tmp, home)
  return libs
}

/** Reads the broker version from the `kafka_<scala>-<version>.jar` file name. */
export async function kafkaVersionOf (libsDir: string): Promise<string> {
  for (const name of await readdir(libsDir)) {
    const m = /^kafka_[\d.]+-(.+)\.jar$/.exec(name)
    if (m?.[1] !== undefined) return m[1]
  }
  throw new Error(`No kafka_<scala>-<version>.jar in ${libsDir}; delete that directory's parent and run up again.`)
}

/** Returns the unpacked Elasticsearch home (pristine: configuration, data and logs live in the state directory). */
export async function ensureElasticsearchHome (cacheDir: string, log: Log): Promise<string> {
  const home = join(cacheDir, `elasticsearch-${ELASTICSEARCH_VERSION}`)
  if (await exists(join(home, MARKER))) return home
  log(`Fetching the Elasticsearch ${ELASTICSEARCH_VERSION} integ-test zip with Maven and unpacking it (first run only)…`)
  const tmp = join(cacheDir, `elasticsearch.tmp-${process.pid}`)
  await rm(home, { recursive: true, force: true })
  await rm(tmp, { recursive: true, force: true })
  await mkdir(tmp, { recursive: true })
  await mvn(['dependency:copy', `-Dartifact=${ES_ARTIFACT}`, `-DoutputDirectory=${tmp}`])
  const zip = join(tmp, `elasticsearch-${ELASTICSEARCH_VERSION}.zip`)
  await unzip(zip, join(tmp, 'x'))
  const unpacked = join(tmp, 'x', `elasticsearch-${ELASTICSEARCH_VERSION}`)
  if (!await exists(join(unpacked, 'bin', 'elasticsearch'))) throw new Error(`Unexpected layout in ${zip}: no bin/elasticsearch.`)
  await writeFile(join(unpacked, MARKER), `${new Date().toISOString()}\n`)
  await rename(unpacked, home)
  // The zip stays in ~/.m2; a second copy here would only take 100 MB.
  await rm(tmp, { recursive: true, force: true })
  return home
}

/** Extracts with `unzip` when installed (keeps the executable bits); otherwise with Python's zipfile, which drops
 * them, so the scripts in bin/ are made executable again. */
async function unzip (zip: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true })
  try {
    await run('unzip', ['-q', zip, '-d', dest])
    return
  } catch (err) {
    if ((err as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw err
  }
  await run('python3', ['-m', 'zipfile', '-e', zip, dest])
  const bin = join(dest, `elasticsearch-${ELASTICSEARCH_VERSION}`, 'bin')
  for (const name of await readdir(bin)) {
    if (!/\.(bat|exe)$/.test(name)) await chmod(join(bin, name), 0o755)
  }
}
