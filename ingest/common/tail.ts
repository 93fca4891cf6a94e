/**
 * A pull-based file tailer with positions the caller commits. It follows files across rotation by
 * rename (drains the old inode before leaving it), rotation by copytruncate (finds the copy and reads
 * what it had not read yet, then starts the truncated file at a new generation), truncation, a partial
 * last line (never emitted until its newline arrives, or until a rotated file has gone quiet) and
 * files that appear later. It only reads when asked, so memory is bounded by what the caller requests.
 */
import { open, stat, readdir, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Stats } from 'node:fs'
import type { Checkpoint, FileCheckpoint } from './checkpoint.ts'

export interface TailLine {
  /** Raw bytes of the line, without the newline. At most `maxLineBytes`; see `truncated`. */
  bytes: Buffer
  /** The line was longer than `maxLineBytes`; `bytes` holds its beginning. */
  truncated: boolean
  /** Length of the whole line in bytes, newline excluded. */
  length: number
  path: string
  /** `dev:ino` of the file the line belongs to. */
  fileKey: string
  generation: number
  /** Byte offset of the line's first byte. */
  offset: number
}

export interface TailOptions {
  paths: readonly string[]
  maxLineBytes: number
  /** Bytes read per system call. */
  chunkBytes?: number
  /** A rotated-away file that has not grown for this long is finished (its unterminated last line emitted). */
  rotatedIdleMs?: number
  /** Emit an unterminated last line at end of file (one-shot reads such as `auditline parse`, never when following). */
  emitUnterminated?: boolean
}

interface OpenFile {
  fh: FileHandle
  key: string
  /** Path the data is read from (a rotated copy may differ from `cp.path`). */
  readPath: string
  cp: FileCheckpoint
  /** No longer the file at its configured path: drain, then close. */
  draining: boolean
  /** For a copytruncate copy: the original's key (its lines keep the original's ids, `cp.idKey`). */
  copyOf?: string
  lastGrowth: number
  lastSize: number
  /**
   * The file's first bytes (up to HEAD_BYTES) as first seen while nothing of it was read yet: with no `tail` to go
   * by, they tell a truncated-and-rewritten file from one that only grew, and find its copy after copytruncate.
   */
  head: Buffer
  /** Largest size seen: a file never shrinks unless it was truncated. */
  maxSize: number
}

const TAIL_BYTES = 64
const HEAD_BYTES = 64

export class Tailer {
  private readonly files = new Map<string, OpenFile[]>()
  private readonly chunk: number
  private readonly idleMs: number
  /** Entries of the checkpoint that belong to files not open now (kept so that nothing is forgotten). */
  private readonly parked = new Map<string, FileCheckpoint>()

  constructor (private readonly opts: TailOptions, checkpoint: Checkpoint) {
    this.chunk = opts.chunkBytes ?? 256 * 1024
    this.idleMs = opts.rotatedIdleMs ?? 2000
    for (const [key, fc] of Object.entries(checkpoint.files)) this.parked.set(key, { ...fc })
    for (const p of opts.paths) this.files.set(p, [])
  }

  /** Re-examines every path: new files, rotation, truncation. Call before `read`. */
  async refresh (): Promise<void> {
    for (const path of this.opts.paths) await this.refreshPath(path)
  }

  private async refreshPath (path: string): Promise<void> {
    const list = this.files.get(path) ?? []
    this.files.set(path, list)
    let st: Stats | undefined
    try { st = await stat(path) } catch { st = undefined }
    const active = list.find(f => !f.draining)
    if (st === undefined) {
      // Removed or renamed away with nothing new yet: the old inode drains.
      if (active !== undefined) active.draining = true
      if (list.length === 0) await this.adoptRotated(path, list)
      return
    }
    const key = `${st.dev}:${st.ino}`
    if (active !== undefined && active.key === key) {
      if (await this.wasTruncated(active, st.size)) await this.onTruncated(path, list, active, st.size)
      else await this.noteHead(active, st.size)
      return
    }
    if (active !== undefined) active.draining = true
    if (list.length === 0) await this.adoptRotated(path, list, key)
    const cp = this.parked.get(key)
    this.parked.delete(key)
    const fc: FileCheckpoint = cp ?? { path, offset: 0, generation: 0, tail: '' }
    fc.path = path
    const fh = await open(path, 'r')
    const f: OpenFile = { fh, key, readPath: path, cp: fc, draining: false, lastGrowth: Date.now(), lastSize: st.size, head: Buffer.alloc(0), maxSize: st.size }
    list.push(f)
    if (await this.wasTruncated(f, st.size)) await this.onTruncated(path, list, f, st.size)
    else await this.noteHead(f, st.size)
  }

  /**
   * Truncated in place since the last look: it shrank, or the bytes before our offset (or, with nothing read
   * yet, its first bytes) are no longer the ones we saw. The last case matters when the file is copytruncated
   * while we are still busy with an older file (#3): its whole content is then only in the copy.
   */
  private async wasTruncated (f: OpenFile, size: number): Promise<boolean> {
    if (size < f.cp.offset || size < f.maxSize) return true
    f.maxSize = size
    if (f.cp.offset > 0) return !await this.tailMatches(f)
    if (f.head.length === 0) return false
    const probe = Buffer.alloc(f.head.length)
    const { bytesRead } = await f.fh.read(probe, 0, f.head.length, 0)
    return bytesRead !== f.head.length || !probe.equals(f.head)
  }

  /** Remembers the first bytes of a file nothing has been read from yet (see `head`). */
  private async noteHead (f: OpenFile, size: number): Promise<void> {
    if (f.cp.offset > 0 || f.head.length >= HEAD_BYTES || size <= f.head.length) return
    const buf = Buffer.alloc(Math.min(size, HEAD_BYTES))
    const { bytesRead } = await f.fh.read(buf, 0, buf.length, 0)
    f.head = buf.subarray(0, bytesRead)
  }

  /**
   * Truncated and rewritten past our offset between two looks (copytruncate under load) leaves the size
   * above the offset: the bytes just before the offset then no longer are the ones we read there.
   */
  private async tailMatches (f: OpenFile): Promise<boolean> {
    if (f.cp.tail === '') return true
    const tail = Buffer.from(f.cp.tail, 'base64')
    const probe = Buffer.alloc(tail.length)
    const { bytesRead } = await f.fh.read(probe, 0, tail.length, f.cp.offset - tail.length)
    return bytesRead === tail.length && probe.equals(tail)
  }

  /**
   * On start, a checkpointed inode that is no longer at its path was rotated while we were down:
   * find it among its siblings (`auth.log.1`, …) and finish it first.
   */
  private async adoptRotated (path: string, list: OpenFile[], currentKey?: string): Promise<void> {
    const wanted = [...this.parked.entries()].filter(([k, fc]) => fc.path === path && k !== currentKey)
    if (wanted.length === 0) return
    for (const sib of await siblings(path)) {
      let st: Stats
      try { st = await stat(sib) } catch { continue }
      const key = `${st.dev}:${st.ino}`
      const hit = wanted.find(([k]) => k === key)
      if (hit === undefined) continue
      this.parked.delete(key)
      const fh = await open(sib, 'r')
      list.push({ fh, key, readPath: sib, cp: hit[1], draining: true, lastGrowth: Date.now(), lastSize: st.size, head: Buffer.alloc(0), maxSize: st.size })
    }
  }

  /**
   * The file shrank below what we read: copytruncate (or an operator's truncation). The rest of the
   * old content may survive in a copy next to it: read it from there, then restart this inode at 0.
   */
  private async onTruncated (path: string, list: OpenFile[], f: OpenFile, size: number): Promise<void> {
    const copy = await this.findCopy(path, f)
    if (copy !== undefined) list.splice(list.indexOf(f), 0, copy)
    f.cp = { path, offset: 0, generation: f.cp.generation + 1, tail: '', ...(f.cp.idKey === undefined ? {} : { idKey: f.cp.idKey }) }
    f.head = Buffer.alloc(0)
    f.maxSize = size
    await this.noteHead(f, size)
  }

  /**
   * The copy is the sibling whose bytes before our offset are the ones we read there (`tail`) or, when nothing
   * was read yet, whose first bytes are the file's first bytes (`head`). Without either there is nothing to
   * recognise a copy by (the file was empty whenever we looked), so none is taken.
   */
  private async findCopy (path: string, f: OpenFile): Promise<OpenFile | undefined> {
    const [mark, at] = f.cp.offset > 0 ? [Buffer.from(f.cp.tail, 'base64'), f.cp.offset] : [f.head, f.head.length]
    if (mark.length === 0) return undefined
    // A copy holds the mark, and past a read offset something not read yet.
    const minSize = f.cp.offset > 0 ? f.cp.offset + 1 : at
    for (const sib of await siblings(path)) {
      let st: Stats
      try { st = await stat(sib) } catch { continue }
      if (st.size < minSize || `${st.dev}:${st.ino}` === f.key) continue
      const fh = await open(sib, 'r')
      const probe = Buffer.alloc(mark.length)
      await fh.read(probe, 0, mark.length, at - mark.length)
      if (probe.equals(mark)) {
        // Under its own key in the checkpoint (a restart finds it among the siblings and finishes it), with the
        // original's key for the ids of its lines.
        const cp: FileCheckpoint = { ...f.cp, idKey: f.cp.idKey ?? f.key }
        return { fh, key: `${st.dev}:${st.ino}`, readPath: sib, cp, draining: true, copyOf: f.key, lastGrowth: Date.now(), lastSize: st.size, head: Buffer.alloc(0), maxSize: st.size }
      }
      await fh.close()
    }
    return undefined
  }

  /** Reads up to `maxLines` complete lines (and `maxBytes` bytes), oldest file first. */
  async read (maxLines: number, maxBytes: number): Promise<TailLine[]> {
    const out: TailLine[] = []
    let bytes = 0
    for (const list of this.files.values()) {
      for (const f of [...list]) {
        while (out.length < maxLines && bytes < maxBytes) {
          const got = await this.readFrom(f, maxLines - out.length, maxBytes - bytes)
          if (got.length === 0) break
          for (const l of got) { out.push(l); bytes += l.length + 1 }
        }
        if (!f.draining && this.opts.emitUnterminated === true && out.length < maxLines && bytes < maxBytes) {
          const last = await this.flushUnterminated(f)
          if (last !== undefined) out.push(last)
        }
        if (f.draining && out.length < maxLines && bytes < maxBytes && await this.finished(f)) {
          const last = await this.flushUnterminated(f)
          if (last !== undefined) out.push(last)
          list.splice(list.indexOf(f), 1)
          await f.fh.close()
        }
        if (out.length >= maxLines || bytes >= maxBytes) return out
      }
    }
    return out
  }

  private async readFrom (f: OpenFile, maxLines: number, maxBytes: number): Promise<TailLine[]> {
    const size = Math.max(this.chunk, Math.min(maxBytes, 4 * this.chunk))
    const buf = Buffer.allocUnsafe(size)
    const { bytesRead } = await f.fh.read(buf, 0, size, f.cp.offset)
    if (bytesRead === 0) return []
    const lines: TailLine[] = []
    let start = 0
    while (lines.length < maxLines) {
      const nl = buf.indexOf(10, start)
      if (nl === -1 || nl >= bytesRead) break
      const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl
      const length = end - start
      const truncated = length > this.opts.maxLineBytes
      lines.push(this.line(f, Buffer.from(buf.subarray(start, truncated ? start + this.opts.maxLineBytes : end)), truncated, length, f.cp.offset + start))
      start = nl + 1
    }
    if (lines.length === 0) {
      // No newline in a whole buffer: a line longer than the buffer. Find its end without keeping it.
      if (bytesRead === size) return await this.readLongLine(f, buf.subarray(0, Math.min(size, this.opts.maxLineBytes)))
      return []
    }
    this.advance(f, buf.subarray(0, start), start)
    return lines
  }

  private async readLongLine (f: OpenFile, head: Buffer): Promise<TailLine[]> {
    const probe = Buffer.allocUnsafe(this.chunk)
    let pos = f.cp.offset + this.chunk
    for (;;) {
      const { bytesRead } = await f.fh.read(probe, 0, this.chunk, pos)
      if (bytesRead === 0) return [] // newline not written yet: wait for it
      const nl = probe.subarray(0, bytesRead).indexOf(10)
      if (nl !== -1) {
        const end = pos + nl
        const line = this.line(f, Buffer.from(head), true, end - f.cp.offset, f.cp.offset)
        const tail = Buffer.from(probe.subarray(Math.max(0, nl + 1 - TAIL_BYTES), nl + 1))
        this.advance(f, tail, end + 1 - f.cp.offset)
        return [line]
      }
      pos += bytesRead
    }
  }

  private line (f: OpenFile, bytes: Buffer, truncated: boolean, length: number, offset: number): TailLine {
    return { bytes, truncated, length, path: f.cp.path, fileKey: f.cp.idKey ?? f.key, generation: f.cp.generation, offset }
  }

  private advance (f: OpenFile, consumed: Buffer, n: number): void {
    f.cp.offset += n
    const t = consumed.subarray(Math.max(0, consumed.length - TAIL_BYTES))
    f.cp.tail = t.length === TAIL_BYTES || f.cp.tail === '' ? t.toString('base64') : mergeTail(f.cp.tail, t)
  }

  private async finished (f: OpenFile): Promise<boolean> {
    const st = await f.fh.stat()
    if (st.size !== f.lastSize) { f.lastSize = st.size; f.lastGrowth = Date.now(); return false }
    return Date.now() - f.lastGrowth >= this.idleMs || f.copyOf !== undefined
  }

  /** A rotated file's last line without newline: it will never get one, so emit it. */
  private async flushUnterminated (f: OpenFile): Promise<TailLine | undefined> {
    const st = await f.fh.stat()
    const rest = st.size - f.cp.offset
    if (rest <= 0) return undefined
    const keep = Math.min(rest, this.opts.maxLineBytes)
    const buf = Buffer.alloc(keep)
    await f.fh.read(buf, 0, keep, f.cp.offset)
    const line = this.line(f, buf, rest > keep, rest, f.cp.offset)
    this.advance(f, buf, rest)
    return line
  }

  /** Positions reached so far, as a checkpoint's `files` (the caller saves it after the acknowledgement). */
  positions (): Record<string, FileCheckpoint> {
    const out: Record<string, FileCheckpoint> = {}
    for (const [k, fc] of this.parked) out[k] = { ...fc }
    for (const list of this.files.values()) {
      for (const f of list) out[f.key] = { ...f.cp }
    }
    return out
  }

  /** Bytes present in the files but not read yet (the lag metric). */
  async lagBytes (): Promise<number> {
    let lag = 0
    for (const list of this.files.values()) {
      for (const f of list) {
        const st = await f.fh.stat()
        lag += Math.max(0, st.size - f.cp.offset)
      }
    }
    return lag
  }

  async close (): Promise<void> {
    for (const list of this.files.values()) {
      for (const f of list) await f.fh.close().catch(() => {})
      list.length = 0
    }
  }
}

function mergeTail (prev: string, next: Buffer): string {
  const b = Buffer.concat([Buffer.from(prev, 'base64'), next])
  return b.subarray(Math.max(0, b.length - TAIL_BYTES)).toString('base64')
}

/** Files next to `path` whose names start with its name (`x.log.1`, `x.log-20261129`), uncompressed. */
async function siblings (path: string): Promise<string[]> {
  const dir = dirname(path)
  const base = basename(path)
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  return names
    .filter(n => n !== base && n.startsWith(base) && !/\.(gz|bz2|xz|zst)$/.test(n))
    .sort()
    .map(n => join(dir, n))
}
