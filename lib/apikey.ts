/**
 * API keys: `al_<id>.<secret>`. Only an scrypt hash of the whole key is stored (node:crypto, no
 * dependency); verification compares in constant time.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const N = 16384
const R = 8
const P = 1
const KEYLEN = 32

function scrypt (password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, opts, (err, key) => { if (err === null) resolve(key); else reject(err) })
  })
}

export function parseKey (key: string): { id: string, secret: string } | undefined {
  const m = /^al_([a-z0-9]{4,32})\.([A-Za-z0-9_-]{20,128})$/.exec(key)
  return m === null ? undefined : { id: m[1] as string, secret: m[2] as string }
}

export async function hashKey (key: string): Promise<string> {
  const salt = randomBytes(16)
  const h = await scrypt(key, salt, KEYLEN, { N, r: R, p: P })
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${h.toString('base64')}`
}

export async function verifyKey (key: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, hash] = stored.split('$')
  if (alg !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const got = await scrypt(key, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 })
  return got.length === expected.length && timingSafeEqual(got, expected)
}

/** A new random key and its stored form. */
export async function createKey (): Promise<{ id: string, key: string, hash: string }> {
  const id = randomBytes(6).toString('hex')
  const key = `al_${id}.${randomBytes(24).toString('base64url')}`
  return { id, key, hash: await hashKey(key) }
}

/** The key a request presents: `Authorization: ApiKey <key>` or `X-Api-Key: <key>`. */
export function presentedKey (headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  const auth = headers.authorization
  if (typeof auth === 'string' && auth.startsWith('ApiKey ')) return auth.slice(7).trim()
  const x = headers['x-api-key']
  return typeof x === 'string' ? x : undefined
}

const VERIFIED_MS = 5 * 60_000
/** Keys are few (one per holder or panel installation): the bound is only a guard. */
const VERIFIED_MAX = 1024

/**
 * A verifier for stored keys: returns the entry a presented key belongs to, or undefined. A verified key
 * is remembered by its SHA-256 for five minutes, so scrypt's cost is paid once per key, not per request.
 */
export function keyVerifier<T extends { id: string, hash: string }> (entries: readonly T[]): (key: string) => Promise<T | undefined> {
  const byId = new Map(entries.map(e => [e.id, e]))
  const verified = new Map<string, { entry: T, until: number }>()
  return async key => {
    const digest = createHash('sha256').update(key).digest('hex')
    const hit = verified.get(digest)
    if (hit !== undefined && hit.until > Date.now()) return hit.entry
    const parsed = parseKey(key)
    const stored = parsed === undefined ? undefined : byId.get(parsed.id)
    if (stored === undefined || !await verifyKey(key, stored.hash)) return undefined
    if (verified.size >= VERIFIED_MAX) verified.clear()
    verified.set(digest, { entry: stored, until: Date.now() + VERIFIED_MS })
    return stored
  }
}
