#!/usr/bin/env node
// Builds src/miniprogram_npm from package.json's dependencies with miniprogram-ci's packNpm,
// the same build WeChat DevTools runs from "Tools > Build npm". The mini-program root is src/,
// so package.json (and node_modules, tests, scripts) stay out of the uploaded code.
const path = require('path');
const fs = require('fs');
const ci = require('miniprogram-ci');

async function main() {
  const root = path.resolve(__dirname, '..');
  const dist = path.join(root, 'src');
  fs.rmSync(path.join(dist, 'miniprogram_npm'), { recursive: true, force: true });
  const started = Date.now();
  const result = await ci.packNpmManually({
    packageJsonPath: path.join(root, 'package.json'),
    miniprogramNpmDistDir: dist,
    ignores: [],
  });
  const warnings = result.warnList || [];
  for (const w of warnings) console.warn('packNpm warning:', w.msg || JSON.stringify(w));
  const built = fs.readdirSync(path.join(dist, 'miniprogram_npm'));
  console.log(
    `packNpm: ${result.miniProgramPackNum} mini-program package(s), ${result.otherNpmPackNum} other(s) ` +
      `-> src/miniprogram_npm [${built.join(', ')}] in ${Date.now() - started} ms`,
  );
}

main().catch((err) => {
  console.error('packNpm failed:', err && err.stack ? err.stack : err);
  process.exit(1);
});
