/**
 * `npm run bench -- <suite>`: throughput measured as ratios against a baseline run on the same input in the
 * same process, so that figures compare across machines. Never part of `npm test`.
 */
import { benchIngest } from './ingest.ts'
import { benchAnonymizer } from './anonymizer.ts'
import { benchIndexer } from './indexer.ts'
import { benchQuery } from './query.ts'
import { benchEmbedded } from './embedded.ts'

const suites: Record<string, (args: string[]) => Promise<void>> = {
  ingest: benchIngest,
  anonymizer: benchAnonymizer,
  indexer: benchIndexer,
  query: benchQuery,
  embedded: benchEmbedded
}

const [name = 'ingest', ...rest] = process.argv.slice(2)
const suite = suites[name]
if (suite === undefined) {
  process.stderr.write(`unknown bench suite "${name}" (known: ${Object.keys(suites).join(', ')})\n`)
  process.exit(2)
}
await suite(rest)
process.exit(0)
