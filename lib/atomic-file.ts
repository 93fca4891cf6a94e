/**
 * A file replaced durably and atomically: written to `<file>.tmp`, fsynced, renamed over `file`, and the
 * directory fsynced, so that after a crash the file holds either the old or the new content, never a mix.
 * Used for every piece of state that positions depend on (checkpoints, sequence journals, retention state).
 */
import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'

export async function writeFileAtomic (file: string, text: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  const dh = await open(dirname(file), 'r')
  try { await dh.sync() } finally { await dh.close() }
}
