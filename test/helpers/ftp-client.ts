/**
 * A minimal FTP client over node:net, just enough for the tests to drive real FTP servers (RFC 959 plus
 * EPSV from RFC 2428 for IPv6): USER/PASS, TYPE I, PASV/EPSV, STOR, RETR, DELE, RNFR/RNTO, MKD, RMD,
 * SITE CHMOD, QUIT.
 * Not a general client: no active mode, no TLS, no listings. Kept here so that the project needs no npm
 * FTP dependency only for its tests.
 */
import { connect, isIPv6, type Socket } from 'node:net'
import { once } from 'node:events'

export interface Reply { code: number, text: string }

export class FtpClient {
  private readonly lines: string[] = []
  private waiter: (() => void) | undefined
  private buffer = ''
  private closed = false

  private constructor (private readonly socket: Socket, readonly host: string) {
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      this.buffer += chunk
      let i: number
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i).replace(/\r$/, ''))
        this.buffer = this.buffer.slice(i + 1)
      }
      this.wake()
    })
    socket.on('close', () => { this.closed = true; this.wake() })
    socket.on('error', () => { this.closed = true; this.wake() })
  }

  /** Connects and reads the server's greeting (which must be 220). */
  static async connect (host: string, port: number): Promise<FtpClient> {
    const socket = connect({ host, port })
    await once(socket, 'connect')
    const c = new FtpClient(socket, host)
    const hello = await c.reply()
    if (hello.code !== 220) throw new Error(`FTP greeting ${hello.code} ${hello.text}`)
    return c
  }

  private wake (): void {
    const w = this.waiter
    this.waiter = undefined
    w?.()
  }

  private async nextLine (timeoutMs: number): Promise<string> {
    const until = Date.now() + timeoutMs
    while (this.lines.length === 0) {
      if (this.closed) throw new Error('FTP control connection closed')
      const left = until - Date.now()
      if (left <= 0) throw new Error('timed out waiting for an FTP reply')
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, left)
        this.waiter = () => { clearTimeout(t); resolve() }
      })
    }
    return this.lines.shift() as string
  }

  /** Reads one reply, multi-line replies (`123-…` up to `123 …`) included. */
  async reply (timeoutMs = 10_000): Promise<Reply> {
    const first = await this.nextLine(timeoutMs)
    const m = /^(\d{3})([ -])(.*)$/.exec(first)
    if (m === null) throw new Error(`not an FTP reply: ${first}`)
    const text = [m[3] as string]
    if (m[2] === '-') {
      for (;;) {
        const l = await this.nextLine(timeoutMs)
        if (l.startsWith(`${m[1] as string} `)) { text.push(l.slice(4)); break }
        text.push(l)
      }
    }
    return { code: Number(m[1]), text: text.join('\n') }
  }

  async cmd (line: string): Promise<Reply> {
    this.socket.write(line + '\r\n')
    return await this.reply()
  }

  /** USER + PASS; resolves with the final reply (230 on success, 530 on a bad password). */
  async login (user: string, pass: string): Promise<Reply> {
    const r = await this.cmd(`USER ${user}`)
    if (r.code !== 331) return r
    return await this.cmd(`PASS ${pass}`)
  }

  /** Opens a passive data connection: EPSV on IPv6 (PASV has no IPv6 form), PASV on IPv4. */
  private async data (): Promise<Socket> {
    let port: number
    if (isIPv6(this.host)) {
      const r = await this.cmd('EPSV')
      const m = /\(\|\|\|(\d+)\|\)/.exec(r.text)
      if (r.code !== 229 || m === null) throw new Error(`EPSV failed: ${r.code} ${r.text}`)
      port = Number(m[1])
    } else {
      const r = await this.cmd('PASV')
      const m = /(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)/.exec(r.text)
      if (r.code !== 227 || m === null) throw new Error(`PASV failed: ${r.code} ${r.text}`)
      port = Number(m[5]) * 256 + Number(m[6])
    }
    const s = connect({ host: this.host, port })
    await once(s, 'connect')
    return s
  }

  private async expect (r: Reply, ...codes: number[]): Promise<Reply> {
    if (!codes.includes(r.code)) throw new Error(`unexpected FTP reply ${r.code} ${r.text}`)
    return r
  }

  async binary (): Promise<Reply> { return await this.expect(await this.cmd('TYPE I'), 200) }

  /** STOR: resolves with the final reply (226 when the server stored the file). */
  async upload (path: string, body: Buffer | string): Promise<Reply> {
    const s = await this.data()
    const pre = await this.cmd(`STOR ${path}`)
    if (pre.code >= 400) { s.destroy(); return pre }
    s.end(body)
    await once(s, 'close')
    return await this.reply()
  }

  /** RETR: the file's bytes, or the error reply. */
  async download (path: string): Promise<{ reply: Reply, body: Buffer }> {
    const s = await this.data()
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    const closed = once(s, 'close')
    const pre = await this.cmd(`RETR ${path}`)
    if (pre.code >= 400) { s.destroy(); return { reply: pre, body: Buffer.alloc(0) } }
    await closed
    return { reply: await this.reply(), body: Buffer.concat(chunks) }
  }

  async delete (path: string): Promise<Reply> { return await this.cmd(`DELE ${path}`) }
  async mkdir (path: string): Promise<Reply> { return await this.cmd(`MKD ${path}`) }
  async rmdir (path: string): Promise<Reply> { return await this.cmd(`RMD ${path}`) }
  async chmod (mode: string, path: string): Promise<Reply> { return await this.cmd(`SITE CHMOD ${mode} ${path}`) }

  /** RNFR + RNTO; resolves with the RNTO reply (250 on success), or the RNFR error. */
  async rename (from: string, to: string): Promise<Reply> {
    const r = await this.cmd(`RNFR ${from}`)
    if (r.code !== 350) return r
    return await this.cmd(`RNTO ${to}`)
  }

  /** QUIT, then waits for the server to close the connection. */
  async quit (): Promise<void> {
    if (this.closed) return
    try {
      await this.cmd('QUIT')
    } catch { /* the server may close before its 221 arrives */ }
    this.socket.end()
    if (!this.closed) await Promise.race([once(this.socket, 'close'), new Promise(resolve => setTimeout(resolve, 2000))])
    this.socket.destroy()
  }
}
