// The shape app.json promises: every page has its four files, subpackages are where the
// design puts them, components are declared per page (none globally), and every declared
// component resolves, either to src/ or to the packNpm output.
const fs = require('fs');
const path = require('path');
const { measure, report, BUDGET } = require('../../scripts/size-check');

const SRC = path.resolve(__dirname, '../../src');
const app = JSON.parse(fs.readFileSync(path.join(SRC, 'app.json'), 'utf8'));
const allPages = app.pages.concat(...app.subpackages.map((s) => s.pages.map((p) => `${s.root}/${p}`)));

test('main package and subpackages as designed', () => {
  expect(app.pages).toEqual(['pages/home/index', 'pages/login/index', 'pages/scan/index', 'pages/pay/index']);
  expect(app.subpackages.map((s) => s.root)).toEqual(['payment', 'points', 'merchant']);
  expect(app.subpackages[0].pages).toEqual(expect.arrayContaining(['pages/amount/index', 'pages/confirm/index', 'pages/pay/index', 'pages/result/index']));
  expect(app.subpackages[1].pages).toEqual(['pages/balance/index', 'pages/expiring/index', 'pages/history/index', 'pages/statistics/index']);
  expect(app.subpackages[2].pages).toEqual(
    expect.arrayContaining(['pages/register/index', 'pages/status/index', 'pages/codes/index', 'pages/takings/index', 'pages/settlement/index', 'pages/orders/index', 'pages/refund/index']),
  );
  expect(app.usingComponents).toBeUndefined();
});

test.each(allPages)('%s has js, json, wxml, wxss and resolvable components', (page) => {
  ['js', 'json', 'wxml', 'wxss'].forEach((ext) => expect(fs.existsSync(path.join(SRC, `${page}.${ext}`))).toBe(true));
  const json = JSON.parse(fs.readFileSync(path.join(SRC, `${page}.json`), 'utf8'));
  const wxml = fs.readFileSync(path.join(SRC, `${page}.wxml`), 'utf8');
  Object.entries(json.usingComponents || {}).forEach(([tag, target]) => {
    const file = target.startsWith('/') ? path.join(SRC, target) : path.join(SRC, 'miniprogram_npm', target);
    expect(fs.existsSync(`${file}.json`)).toBe(true);
    expect(wxml.includes(`<${tag}`)).toBe(true); // declared only where used: keeps packages small
  });
  // Vant tags used must be declared on the page itself
  (wxml.match(/<van-[a-z-]+/g) || []).forEach((t) => expect(json.usingComponents).toHaveProperty(t.slice(1)));
});

test('a subpackage page never requires code from another subpackage', () => {
  app.subpackages.forEach((sub) => {
    sub.pages.forEach((p) => {
      const js = fs.readFileSync(path.join(SRC, `${sub.root}/${p}.js`), 'utf8');
      (js.match(/require\('([^']+)'\)/g) || []).forEach((r) => {
        const rel = r.slice(9, -2);
        const target = path.relative(SRC, path.resolve(path.dirname(path.join(SRC, `${sub.root}/${p}`)), rel));
        const otherSub = app.subpackages.find((s) => s.root !== sub.root && target.startsWith(`${s.root}/`));
        expect(otherSub).toBeUndefined();
      });
    });
  });
});

test('size check: within budget now, and fails a package that is over', () => {
  const m = measure(SRC);
  expect(m.sizes.main).toBeLessThanOrEqual(BUDGET.main);
  expect(report(m).failed).toBe(false);
  const over = report({ subs: ['payment'], sizes: { main: 1000, payment: BUDGET.sub + 1 }, npm: 0, total: BUDGET.sub + 1001 });
  expect(over.failed).toBe(true);
  expect(over.text).toMatch(/payment .* OVER/);
});
