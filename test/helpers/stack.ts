/**
 * The stack the integration tests run against (set by test/integration/setup.ts), and helpers to give
 * every test its own topics and indices.
 */
import { randomBytes } from 'node:crypto'

export interface TestStack {
  brokers: string[]
  esUrl: string
  kafkaVersion: string
  esVersion: string
  origin: string
}

let current: TestStack | undefined

export function setStack (s: TestStack): void { current = s }

export function stack (): TestStack {
  if (current === undefined) throw new Error('integration stack not set up (run through .mocharc.integration.json)')
  return current
}

/** A fresh prefix for topics (`t<hex>.`) and indices (`t<hex>`) so that tests never see each other's data. */
export function uniquePrefix (): { topicPrefix: string, indexPrefix: string } {
  const id = randomBytes(4).toString('hex')
  return { topicPrefix: `t${id}.`, indexPrefix: `t${id}` }
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const until = Date.now() + timeoutMs
  let lastErr: unknown
  while (Date.now() < until) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) { lastErr = err }
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr === undefined ? '' : `: ${String(lastErr)}`}`)
}
