#!/usr/bin/env node
// The `auditline` command: the compiled CLI when `npm run build` produced dist/, else the TypeScript sources
// through tsx (a development dependency, present after `npm ci`).
import { existsSync } from 'node:fs'

const dist = new URL('../dist/cli/main.js', import.meta.url)
if (existsSync(dist)) {
  await import(dist.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import(new URL('../cli/main.ts', import.meta.url).href)
}
