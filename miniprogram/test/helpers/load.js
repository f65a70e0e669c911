// Loads a page or component with miniprogram-simulate and the official WXML compiler (Vant uses
// WXS, which the pure-JS compiler does not run). Vant's npm paths ("@vant/weapp/button/index")
// are mapped to the packNpm output in src/miniprogram_npm, as the mini-program resolves them.
const path = require('path');
const fs = require('fs');
const simulate = require('miniprogram-simulate');
const { setServices, createServices } = require('../../src/services/index');
const { createFakeWx, loggedIn } = require('./fake-wx');

const SRC = path.resolve(__dirname, '../../src');

function npmOverrides(jsonPath) {
  const json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const out = {};
  Object.entries(json.usingComponents || {}).forEach(([tag, target]) => {
    if (!target.startsWith('.') && !target.startsWith('/')) out[tag] = `/miniprogram_npm/${target}`;
  });
  return out;
}

function collectOverrides(rel, seen = new Set(), acc = {}) {
  const abs = path.join(SRC, rel);
  if (seen.has(abs)) return acc;
  seen.add(abs);
  const json = JSON.parse(fs.readFileSync(`${abs}.json`, 'utf8'));
  Object.assign(acc, npmOverrides(`${abs}.json`));
  Object.values(json.usingComponents || {}).forEach((t) => {
    if (t.startsWith('/')) collectOverrides(t.slice(1), seen, acc);
    else if (t.startsWith('.')) collectOverrides(path.relative(SRC, path.join(path.dirname(abs), t)), seen, acc);
  });
  return acc;
}

/** `rel` like 'pages/home/index'; returns a component id for simulate.render. */
function load(rel) {
  if (!fs.existsSync(path.join(SRC, 'miniprogram_npm/@vant/weapp'))) {
    throw new Error('src/miniprogram_npm is missing: run `npm run build:npm` first');
  }
  // simulate runs each component's JS with require() and expects `delete require.cache` to let
  // the next load run it again; jest's registry ignores that, so a second page using van-button
  // would get no definition. Each load gets its own registry, sharing only the services.
  const shared = require('../../src/services/index');
  let id;
  jest.isolateModules(() => {
    jest.doMock(path.join(SRC, 'services/index.js'), () => shared);
    id = simulate.load(path.join(SRC, rel), {
      compiler: 'official',
      rootPath: SRC,
      usingComponents: collectOverrides(rel),
    });
  });
  return id;
}

/** Renders and attaches, so lifecycle `attached` runs and the DOM can be queried. */
function render(id, props) {
  const comp = simulate.render(id, props);
  const parent = document.createElement('parent-wrapper');
  comp.attach(parent);
  return comp;
}

/** A fresh fake wx (with a stored session when `loggedIn`) wired into fresh services, instant retries. */
function useFakeWx(opts = {}) {
  const fake = createFakeWx(opts);
  if (opts.loggedIn) loggedIn(fake, opts.loggedIn === true ? {} : opts.loggedIn);
  global.wx = fake;
  setServices(createServices(fake, { retryDelayMs: 0, sleep: () => Promise.resolve() }));
  return fake;
}

const flush = async (n = 10) => {
  for (let i = 0; i < n; i += 1) await new Promise((r) => setTimeout(r, 0));
};

/** querySelector that can step into a custom component: 'list-state >>> .list-state__retry'. */
function find(comp, selector) {
  return selector.split('>>>').reduce((node, part) => (node ? node.querySelector(part.trim()) : null), comp);
}

function text(comp, selector) {
  const el = find(comp, selector);
  return el ? el.dom.textContent.trim() : null;
}

/** Taps an element; for a Vant button or cell, its inner element, as a finger would. */
function tap(comp, selector) {
  const el = find(comp, selector);
  if (!el) throw new Error(`nothing matches ${selector}`);
  const inner = el.querySelector && (el.querySelector('.van-button') || el.querySelector('.van-cell'));
  (inner || el).dispatchEvent('tap');
  return flush(); // Vant re-emits taps as `click` on a later tick
}

/** Types into a van-field (its inner input) or a plain input. */
function type(comp, selector, value) {
  const el = find(comp, selector);
  if (!el) throw new Error(`nothing matches ${selector}`);
  const inner = (el.querySelector && (el.querySelector('input') || el.querySelector('textarea'))) || el;
  inner.dispatchEvent('input', { detail: { value } });
  return flush();
}

module.exports = { find, tap, type, load, render, useFakeWx, flush, text, simulate, SRC };
