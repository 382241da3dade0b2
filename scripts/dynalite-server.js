#!/usr/bin/env node
// Starts the pinned dynalite on 127.0.0.1 and a port the OS picks (or --port N),
// prints one JSON line {"port": N} once it listens, and exits when its standard
// input closes, so a parent that dies (even by SIGKILL) never leaves it running.
'use strict'
const path = require('path')
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf('--' + name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const root = path.resolve(__dirname, '..')
let dynalite
try {
  dynalite = require(path.join(root, 'node_modules', 'dynalite'))
} catch (e) {
  console.error('dynalite is not installed: run scripts/setup (it runs npm ci) from ' + root)
  process.exit(3)
}
const options = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }
const dir = opt('path')
if (dir) options.path = dir
const server = dynalite(options)
server.on('error', (e) => {
  console.error('dynalite failed: ' + e.message)
  process.exit(2)
})
server.listen(Number(opt('port', '0')), opt('host', '127.0.0.1'), () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})
process.stdin.on('data', () => {})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
