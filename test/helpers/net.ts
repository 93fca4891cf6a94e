/**
 * Loopback helpers shared by the tests that start real servers.
 */
import { createServer, connect } from 'node:net'

/** A TCP port free on both 127.0.0.1 and ::1 right now (the servers under test listen on both). */
export async function freePort (): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => { resolve(p) })
      })
    })
    const v6free = await new Promise<boolean>(resolve => {
      const s = createServer()
      s.once('error', () => { resolve(false) })
      s.listen(port, '::1', () => { s.close(() => { resolve(true) }) })
    })
    if (v6free) return port
  }
}

/** True when something accepts TCP connections on host:port (within a second). */
export function canConnect (host: string, port: number): Promise<boolean> {
  return new Promise(resolve => {
    const s = connect({ host, port })
    s.setTimeout(1000, () => { s.destroy(); resolve(false) })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}
