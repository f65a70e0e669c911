// Bundle budget: the JavaScript a browser fetches on the first load of /admin/ (the entry
// chunk plus everything it imports statically, per dist/.vite/manifest.json), gzipped.
// Fails when that exceeds the budget. An operator lands on the dashboard right after logging
// in, and the dashboard is lazy-loaded with ECharts, so that path is held to the same budget.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join } from 'node:path'

const dist = new URL('../dist/', import.meta.url).pathname
const BUDGET_KB = Number(process.env.ADMIN_JS_BUDGET_KB ?? 400)
const manifest = JSON.parse(readFileSync(join(dist, '.vite/manifest.json'), 'utf8'))

const gz = new Map()
function gzipKb(file) {
  if (!gz.has(file)) {
    const raw = readFileSync(join(dist, file))
    gz.set(file, { raw: raw.length / 1000, gzip: gzipSync(raw, { level: 9 }).length / 1000 })
  }
  return gz.get(file)
}

/** Manifest keys reachable from `key` through static imports, `key` included. */
function staticClosure(key, seen = new Set()) {
  if (seen.has(key)) return seen
  seen.add(key)
  for (const dep of manifest[key]?.imports ?? []) staticClosure(dep, seen)
  return seen
}

function report(title, keys) {
  const files = [...keys].map((k) => manifest[k].file).filter((f) => f.endsWith('.js'))
  const css = new Set([...keys].flatMap((k) => manifest[k].css ?? []))
  let raw = 0
  let gzip = 0
  console.log(`\n${title}`)
  for (const f of files.sort()) {
    const s = gzipKb(f)
    raw += s.raw
    gzip += s.gzip
    console.log(`  ${f.padEnd(52)} ${s.raw.toFixed(1).padStart(8)} kB  gzip ${s.gzip.toFixed(1).padStart(7)} kB`)
  }
  let cssGzip = 0
  for (const f of css) cssGzip += gzipKb(f).gzip
  console.log(`  ${'total JS'.padEnd(52)} ${raw.toFixed(1).padStart(8)} kB  gzip ${gzip.toFixed(1).padStart(7)} kB`)
  console.log(`  ${'CSS'.padEnd(52)} ${''.padStart(8)}     gzip ${cssGzip.toFixed(1).padStart(7)} kB`)
  return gzip
}

const entryKey = Object.keys(manifest).find((k) => manifest[k].isEntry)
if (!entryKey) {
  console.error('bundle budget: no entry chunk in the manifest')
  process.exit(1)
}
const firstLoad = report('First load (entry + static imports):', staticClosure(entryKey))

const dashKey = Object.keys(manifest).find((k) => k.endsWith('views/DashboardView.vue'))
const layoutKey = Object.keys(manifest).find((k) => k.endsWith('views/LayoutView.vue'))
let dashboard = 0
if (dashKey && layoutKey) {
  const afterLogin = staticClosure(entryKey)
  staticClosure(layoutKey, afterLogin)
  staticClosure(dashKey, afterLogin)
  dashboard = report('Dashboard after login (adds the layout and the lazy dashboard chunk with ECharts):', afterLogin)
}

console.log(`\nFirst-load JS: ${firstLoad.toFixed(1)} kB gzipped; with the dashboard: ${dashboard.toFixed(1)} kB; budget ${BUDGET_KB} kB`)
let failed = false
for (const [what, kb] of [['first load', firstLoad], ['dashboard after login', dashboard]]) {
  if (kb > BUDGET_KB) {
    console.error(`bundle budget exceeded (${what}): ${kb.toFixed(1)} kB > ${BUDGET_KB} kB`)
    failed = true
  }
}
if (failed) process.exit(1)
