/**
 * The retention stream's checkpoint: the next sequence number and the record in flight, in one small JSON file
 * (`<dir>/<host>.retention.json`), written atomically (temp file, fsync, rename, fsync of the directory).
 *
 * Why a record in flight is kept whole: a sequence number is reserved (saved) before its record is produced, and
 * a number is never handed out twice. If the process dies before Kafka acknowledged, the next run sends the very
 * same record again (same id, sequence, timestamp and hash) instead of a new one, so the stream has neither a gap
 * nor two different records under one number. A lock file (`.lock`, holding the pid) keeps two runs on the same
 * checkpoint apart; a lock left by a dead process is taken over.
 */
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { AuditError } from '../../lib/errors.ts'
import { writeFileAtomic } from '../../lib/atomic-file.ts'
import type { AuditEvent } from '../../lib/ecs.ts'
import type { DeletionResult, DeletionTarget } from './record.ts'

export interface PendingRecord {
  /** `intent`: the record before the deletion (the deletion follows it); `done`: the record after it. */
  phase: 'intent' | 'done'
  target: DeletionTarget
  event: AuditEvent
  result?: DeletionResult
}

export interface RetentionState {
  v: 1
  stream: string
  /** Sequence number of the stream's next record. */
  next: number
  pending: PendingRecord | null
}

function fileBase (dir: string, host: string): string {
  return join(dir, `${host.replace(/[^A-Za-z0-9._-]/g, '_')}.retention`)
}

function stateError (file: string, why: unknown): AuditError {
  return new AuditError('AUD_ERR_RETENTION_STATE', [file, why], why instanceof Error ? { cause: why } : {})
}

/** Reads the checkpoint without locking it; undefined when there is none yet. Throws AUD_ERR_RETENTION_STATE. */
export async function readState (dir: string, host: string, stream: string): Promise<RetentionState | undefined> {
  const file = fileBase(dir, host) + '.json'
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw stateError(file, err)
  }
  let s: Partial<RetentionState>
  try { s = JSON.parse(text) as Partial<RetentionState> } catch (err) { throw stateError(file, err) }
  if (s.v !== 1 || s.stream !== stream || typeof s.next !== 'number' || !Number.isSafeInteger(s.next) || s.next < 0 ||
    (s.pending !== null && (typeof s.pending !== 'object' || (s.pending.phase !== 'intent' && s.pending.phase !== 'done')))) {
    // Guessing would re-use or skip sequence numbers of the stream.
    throw stateError(file, `not a retention checkpoint of stream ${stream}; refusing to guess its sequence`)
  }
  return s as RetentionState
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class RetentionCheckpoint {
  private constructor (readonly file: string, private readonly lockFile: string, private current: RetentionState) {}

  /** Locks and reads (or starts) the checkpoint. Throws AUD_ERR_RETENTION_BUSY or AUD_ERR_RETENTION_STATE. */
  static async open (dir: string, host: string, stream: string): Promise<RetentionCheckpoint> {
    const b = fileBase(dir, host)
    const lockFile = b + '.lock'
    try { await mkdir(dir, { recursive: true }) } catch (err) { throw stateError(dir, err) }
    await lock(lockFile)
    try {
      const s = await readState(dir, host, stream) ?? { v: 1, stream, next: 0, pending: null }
      return new RetentionCheckpoint(b + '.json', lockFile, s)
    } catch (err) {
      await unlink(lockFile).catch(() => {})
      throw err
    }
  }

  get state (): Readonly<RetentionState> { return this.current }

  /** Persists `next` state; resolves only once it is on disk. */
  async save (next: RetentionState): Promise<void> {
    try {
      await writeFileAtomic(this.file, JSON.stringify(next) + '\n')
    } catch (err) {
      throw stateError(this.file, err)
    }
    this.current = next
  }

  async release (): Promise<void> {
    await unlink(this.lockFile).catch(() => {})
  }
}

async function lock (lockFile: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockFile, 'wx', 0o600)
      try { await fh.writeFile(String(process.pid)) } finally { await fh.close() }
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw stateError(lockFile, err)
    }
    const text = (await readFile(lockFile, 'utf8').catch(() => '')).trim()
    const pid = Number(text)
    if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) throw new AuditError('AUD_ERR_RETENTION_BUSY', [lockFile, pid])
    // An empty lock is being written by its owner right now, unless it is old (the owner died in between).
    const age = Date.now() - ((await stat(lockFile).catch(() => undefined))?.mtimeMs ?? 0)
    if (text === '' && age < 60_000) throw new AuditError('AUD_ERR_RETENTION_BUSY', [lockFile, 'unknown'])
    // Left behind by a process that died: take it over.
    await unlink(lockFile).catch(() => {})
  }
  throw new AuditError('AUD_ERR_RETENTION_BUSY', [lockFile, 'unknown'])
}
