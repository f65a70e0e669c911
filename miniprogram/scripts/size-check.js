#!/usr/bin/env node
// Measures the code packages as WeChat counts them (bytes of the files under the mini-program
// root) and fails when one is over budget: main <= 1.5 MB, each subpackage <= 1.8 MB,
// total <= 20 MB. The main package is everything outside the subpackage roots, so it includes
// miniprogram_npm. Files DevTools leaves out of an upload (packOptions.ignore: .d.ts, .map) are
// not counted; all else is, even npm files no page uses, so the figure is an upper bound.
const fs = require('fs');
const path = require('path');

const MB = 1024 * 1024;
const BUDGET = { main: 1.5 * MB, sub: 1.8 * MB, total: 20 * MB };
const IGNORED = [/\.d\.ts$/, /\.map$/, /(^|\/)\.DS_Store$/];

function walk(dir, base, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const abs = path.join(dir, entry.name);
    const rel = path.relative(base, abs).split(path.sep).join('/');
    if (entry.isDirectory()) walk(abs, base, out);
    else if (!IGNORED.some((re) => re.test(rel))) out.push({ rel, size: fs.statSync(abs).size });
  }
  return out;
}

function measure(root) {
  const app = JSON.parse(fs.readFileSync(path.join(root, 'app.json'), 'utf8'));
  const subs = (app.subpackages || app.subPackages || []).map((s) => s.root.replace(/\/+$/, ''));
  const sizes = { main: 0 };
  subs.forEach((s) => {
    sizes[s] = 0;
  });
  let npm = 0;
  for (const f of walk(root, root, [])) {
    const sub = subs.find((s) => f.rel === s || f.rel.startsWith(`${s}/`));
    sizes[sub || 'main'] += f.size;
    if (f.rel.startsWith('miniprogram_npm/')) npm += f.size;
  }
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  return { subs, sizes, npm, total };
}

function kb(n) {
  return `${(n / 1024).toFixed(1)} KB`;
}

function report({ subs, sizes, npm, total }) {
  const rows = [['main', sizes.main, BUDGET.main, `incl. miniprogram_npm ${kb(npm)}`]];
  subs.forEach((s) => rows.push([s, sizes[s], BUDGET.sub, '']));
  rows.push(['total', total, BUDGET.total, '']);
  const lines = ['package      size          budget        used   ok', '-----------  ------------  ------------  -----  --'];
  let failed = false;
  for (const [name, size, budget, note] of rows) {
    const ok = size <= budget;
    if (!ok) failed = true;
    lines.push(
      `${name.padEnd(11)}  ${kb(size).padStart(12)}  ${kb(budget).padStart(12)}  ${`${((size / budget) * 100).toFixed(0)}%`.padStart(5)}  ${ok ? 'ok' : 'OVER'}${note ? `  (${note})` : ''}`,
    );
  }
  return { text: lines.join('\n'), failed };
}

if (require.main === module) {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '..', 'src'));
  if (!fs.existsSync(path.join(root, 'miniprogram_npm'))) {
    console.error('size-check: src/miniprogram_npm is missing; run `npm run build:npm` first so npm code is counted');
    process.exit(1);
  }
  const { text, failed } = report(measure(root));
  console.log(text);
  if (failed) {
    console.error('size-check: over budget');
    process.exit(1);
  }
  console.log('size-check: all packages within budget');
}

module.exports = { measure, report, BUDGET };
