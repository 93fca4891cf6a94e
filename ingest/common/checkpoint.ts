/**
 * Durable collector checkpoints: per source, the byte offset reached in each file (identified by
 * device + inode) and the stream's next sequence number. Written atomically (temp file, fsync, rename,
 * fsync of the directory) and only after Kafka acknowledged everything before the offset.
 */
import { readFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { AuditError } from '../../lib/errors.ts'
import { writeFileAtomic } from '../../lib/atomic-file.ts'

export interface FileCheckpoint {
  /** Last path the file was seen under. */
  path: string
  /** Byte offset of the first line not yet acknowledged. */
  offset: number
  /** Incremented each time the file is truncated in place, so that ids of new lines at old offsets differ. */
  generation: number
  /** Base64 of up to 64 bytes before `offset`: recognises the file's copy after copytruncate. */
  tail: string
  /**
   * For the copy of a copytruncated file: the `dev:ino` of the original, which its lines' ids keep, so that
   * lines read again from the copy after a restart get the ids they had (absent: the entry's own key).
   */
  idKey?: string
}

export interface Checkpoint {
  version: 1
  /** Next sequence number of the source's stream. */
  nextSequence: number
  files: Record<string, FileCheckpoint>
}

export function emptyCheckpoint (): Checkpoint {
  return { version: 1, nextSequence: 0, files: {} }
}

export class CheckpointStore {
  readonly file: string
  constructor (readonly dir: string, readonly name: string) {
    this.file = join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.checkpoint.json`)
  }

  async load (): Promise<Checkpoint> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyCheckpoint()
      throw new AuditError('AUD_ERR_INGEST_CHECKPOINT', [this.file, err], { cause: err })
    }
    const cp = JSON.parse(text) as Checkpoint
    if (cp.version !== 1) throw new AuditError('AUD_ERR_INGEST_CHECKPOINT', [this.file, `unknown version ${String(cp.version)}`])
    return cp
  }

  async save (cp: Checkpoint): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true })
      await writeFileAtomic(this.file, JSON.stringify(cp), 0o644)
    } catch (err) {
      throw new AuditError('AUD_ERR_INGEST_CHECKPOINT', [this.file, err], { cause: err })
    }
  }
}
