/**
 * A TCP proxy on loopback that can freeze: while frozen it accepts connections and reads what clients send, but
 * passes nothing on in either direction; on thaw it delivers everything it held, in order, including requests of
 * clients that gave up meanwhile (their answers are dropped). To a client this looks like a server whose process
 * was stopped (SIGSTOP) and continued: no answers, no errors, and requests already sent are executed late.
 *
 * Tests use it to make a *shared* Elasticsearch node unavailable to one indexer without stopping it for everyone.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

interface Pair { client: Socket, upstream: Socket, toUpstream: Buffer[], toClient: Buffer[], clientGone: boolean, finishing: boolean }

export class FreezableProxy {
  private server: Server | undefined
  private readonly pairs = new Set<Pair>()
  private frozen = false
  /** Connections accepted since start. */
  connections = 0
  /** Held requests delivered on thaw although their client had given up (executed late, answer dropped). */
  deliveredLate = 0

  constructor (private readonly target: { host: string, port: number }) {}

  async start (): Promise<string> {
    this.server = createServer(client => { this.accept(client) })
    await new Promise<void>(resolve => this.server?.listen(0, '127.0.0.1', resolve))
    const addr = this.server.address()
    if (addr === null || typeof addr === 'string') throw new Error('proxy has no TCP address')
    return `http://127.0.0.1:${addr.port}`
  }

  freeze (): void { this.frozen = true }

  thaw (): void {
    this.frozen = false
    for (const p of this.pairs) this.flush(p)
  }

  async close (): Promise<void> {
    for (const p of this.pairs) { p.client.destroy(); p.upstream.destroy() }
    this.pairs.clear()
    await new Promise<void>(resolve => { if (this.server === undefined) resolve(); else this.server.close(() => resolve()) })
  }

  private accept (client: Socket): void {
    this.connections++
    const upstream = connect(this.target.port, this.target.host)
    const p: Pair = { client, upstream, toUpstream: [], toClient: [], clientGone: false, finishing: false }
    this.pairs.add(p)
    client.on('data', d => { p.toUpstream.push(d); if (!this.frozen) this.flush(p) })
    upstream.on('data', d => { p.toClient.push(d); if (!this.frozen) this.flush(p) })
    client.on('close', () => {
      p.clientGone = true
      // A request the client sent before it gave up still reaches the server (late), as with a stopped process.
      if (!this.frozen) this.finish(p)
    })
    upstream.on('close', () => { client.destroy(); this.pairs.delete(p) })
    client.on('error', () => {})
    upstream.on('error', () => { client.destroy() })
  }

  private flush (p: Pair): void {
    const held = p.toUpstream.splice(0)
    if (p.clientGone && held.length > 0) this.deliveredLate++
    for (const d of held) p.upstream.write(d)
    const answers = p.toClient.splice(0)
    if (!p.clientGone) for (const d of answers) p.client.write(d)
    if (p.clientGone) this.finish(p)
  }

  private finish (p: Pair): void {
    if (p.finishing) return
    p.finishing = true
    // Give the server time to execute and answer what it was sent (the answers have no one to go to), then close.
    setTimeout(() => { p.upstream.destroy(); this.pairs.delete(p) }, 10_000).unref()
  }
}
