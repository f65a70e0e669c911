// Points subpackage: balance, expiring soon, history (paging, pull-to-refresh, errors), statistics.
const { load, render, useFakeWx, flush, text, tap } = require('../helpers/load');

const json = (status, data) => ({ status, data });
const BALANCE = {
  available: 120,
  total_earned: 200,
  used: 70,
  expired: 10,
  expiring_soon: [
    { points: 30, expires_at: '2099-02-01T00:00:00Z' },
    { points: 20, expires_at: '2099-01-01T00:00:00Z' },
  ],
};

describe('balance', () => {
  let id;
  beforeAll(() => {
    id = load('points/pages/balance/index');
  });

  test('shows the balance and links on', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/balance'] = () => json(200, BALANCE);
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(text(page, '.balance__available')).toBe('120');
    expect(page.data.expiringTotal).toBe(50);
    await tap(page, '.balance__expiring');
    expect(fake.calls.navigateTo).toEqual(['/points/pages/expiring/index']);
  });

  test('an error offers retry, which loads again', async () => {
    const fake = useFakeWx({ loggedIn: true });
    // the first try and both automatic retries fail
    const busy = () => json(503, { code: 'DATABASE_UNAVAILABLE', message: 'x', trace_id: 't' });
    const answers = [busy(), busy(), busy()];
    fake.routes['GET /api/points/balance'] = () => answers.shift() || json(200, BALANCE);
    const page = render(id);
    page.instance.onLoad();
    await flush(20);
    expect(text(page, '.balance__error')).toBe('系统繁忙，请稍后重试（编号 t）');
    await tap(page, '.balance__retry');
    await flush();
    expect(text(page, '.balance__available')).toBe('120');
  });
});

describe('expiring soon', () => {
  let id;
  beforeAll(() => {
    id = load('points/pages/expiring/index');
  });

  test('lots first-to-expire first', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/balance'] = () => json(200, BALANCE);
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.data.lots.map((l) => l.points)).toEqual([20, 30]);
    expect(page.querySelectorAll('.expiring__lot')).toHaveLength(2);
    expect(text(page, '.expiring__total')).toBe('50 积分即将过期，请尽快使用');
  });

  test('nothing expiring', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/balance'] = () => json(200, Object.assign({}, BALANCE, { expiring_soon: [] }));
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.querySelector('.expiring__total')).toBeFalsy();
    expect(page.dom.textContent).toContain('近期没有将要过期的积分');
  });
});

describe('history', () => {
  let id;
  beforeAll(() => {
    id = load('points/pages/history/index');
  });

  const rows = (from, n) =>
    Array.from({ length: n }, (_, i) => ({
      id: from + i,
      change: i % 2 ? -5 : 10,
      balance_after: 100 + i,
      kind: i % 2 ? 'deduct' : 'award',
      source: 'payment',
      description: '',
      created_at: '2026-01-01T04:00:00Z',
      expires_at: '2027-01-01T00:00:00Z',
    }));

  test('cursor paging, pull-to-refresh starts over', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const seen = [];
    fake.routes['GET /api/points/history'] = (req, u) => {
      seen.push(u.search);
      return u.searchParams.get('cursor') === 'p2' ? json(200, { items: rows(21, 3), next_cursor: null }) : json(200, { items: rows(1, 20), next_cursor: 'p2' });
    };
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.querySelectorAll('.history__row')).toHaveLength(20);
    expect(text(page, '.history__change')).toBe('+10');
    expect(text(page, '.history__title')).toBe('消费奖励');
    await page.instance.onReachBottom();
    await flush();
    expect(page.querySelectorAll('.history__row')).toHaveLength(23);
    expect(page.dom.textContent).toContain('没有更多了');
    await page.instance.onReachBottom(); // finished: nothing more is asked
    await page.instance.onPullDownRefresh();
    await flush();
    expect(page.querySelectorAll('.history__row')).toHaveLength(20);
    expect(seen).toEqual(['?limit=20', '?cursor=p2&limit=20', '?limit=20']);
  });

  test('a failed page shows the error and retry loads it', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const answers = [{ fail: 'request:fail' }, { fail: 'request:fail' }, { fail: 'request:fail' }];
    fake.routes['GET /api/points/history'] = () => answers.shift() || json(200, { items: rows(1, 2), next_cursor: null });
    const page = render(id);
    page.instance.onLoad();
    await flush(30);
    expect(page.dom.textContent).toContain('网络连接失败，请检查网络后重试');
    await tap(page, '.list >>> .list-state__retry');
    await flush(30);
    expect(page.querySelectorAll('.history__row')).toHaveLength(2);
  });

  test('empty history', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/history'] = () => json(200, { items: [], next_cursor: null });
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.dom.textContent).toContain('还没有积分记录');
  });
});

describe('statistics', () => {
  let id;
  beforeAll(() => {
    id = load('points/pages/statistics/index');
  });

  test('per month and totals', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/statistics'] = () =>
      json(200, {
        months: [
          { month: '2026-01', earned: 100, spent: 40, expired: 0 },
          { month: '2025-12', earned: 50, spent: 0, expired: 5 },
        ],
        totals: { earned: 150, spent: 40, expired: 5 },
      });
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.querySelectorAll('.stats__month')).toHaveLength(2);
    expect(text(page, '.stats__num')).toBe('150');
    expect(page.data.months[0].spentPct).toBe(40);
  });
});
