/**
 * The shape every pipeline component follows:
 *   validate(raw) → config     pure, no I/O; throws AUD_ERR_CONFIG_INVALID
 *   start(config, ctx) → Running   opens connections
 *   running.close()            stop intake → flush → commit → disconnect
 */
import type { Logger } from './log.ts'
import type { Registry } from 'prom-client'

export interface Ctx {
  log: Logger
  /** Aborted when the process is shutting down. */
  signal: AbortSignal
  /** Metrics registry the component registers its counters in. */
  metrics: Registry
}

export interface Running {
  close (): Promise<void>
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal?.aborted === true) { resolve(); return }
    const t = setTimeout(done, ms)
    function done (): void {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Exponential backoff with full jitter, capped: attempt 0 → up to `base` ms. */
export function backoff (attempt: number, base = 200, cap = 10_000): number {
  return Math.round(Math.random() * Math.min(cap, base * 2 ** attempt))
}
