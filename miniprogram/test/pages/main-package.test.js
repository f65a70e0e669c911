// Main package pages: home, login, scan, and the page a printed payment code opens.
const { load, render, useFakeWx, flush, text, tap } = require('../helpers/load');
const { getServices } = require('../../src/services/index');

const json = (status, data) => ({ status, data });

describe('home', () => {
  let id;
  beforeAll(() => {
    id = load('pages/home/index');
  });

  test('logged out: offers login, scan still works', async () => {
    const fake = useFakeWx();
    const page = render(id);
    page.instance.onLoad();
    await flush();
    expect(page.querySelector('.home__login')).toBeTruthy();
    await tap(page, '.home__scan');
    expect(fake.calls.navigateTo).toEqual(['/pages/scan/index']);
  });

  test('logged in: shows the balance and what expires soon', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/balance'] = () =>
      json(200, { available: 128, total_earned: 200, used: 70, expired: 2, expiring_soon: [{ points: 5, expires_at: '2026-12-01T00:00:00Z' }, { points: 3, expires_at: '2026-12-05T00:00:00Z' }] });
    const page = render(id);
    page.instance.onLoad();
    page.instance.onShow();
    await flush();
    expect(text(page, '.home__balance-number')).toBe('128');
    expect(text(page, '.home__expiring')).toBe('8 积分即将过期');
    expect(getServices().store.getState().balance.available).toBe(128);
  });

  test('logged in: a failing balance shows the Chinese error', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/points/balance'] = () => json(403, { code: 'FORBIDDEN', message: 'no', trace_id: 't' });
    const page = render(id);
    page.instance.onLoad();
    page.instance.onShow();
    await flush();
    expect(text(page, '.home__error')).toBe('没有权限进行此操作');
  });

  test('a protected entry sends a logged-out user to login and back', async () => {
    const fake = useFakeWx();
    const page = render(id);
    page.instance.onLoad();
    await tap(page, '.home__link-merchant');
    expect(fake.calls.navigateTo[0]).toBe(`/pages/login/index?redirect=${encodeURIComponent('/merchant/pages/status/index')}`);
  });
});

describe('login', () => {
  let id;
  beforeAll(() => {
    id = load('pages/login/index');
  });

  test('wx.login code goes to wechat-login, then back where the user came from', async () => {
    const fake = useFakeWx();
    fake.loginCode = 'test-alice';
    fake.routes['POST /api/auth/wechat-login'] = (req) =>
      json(200, { access_token: 'A', refresh_token: 'R', expires_in: 7200, sign_key: 'S', user: { id: 'u1', nickname: 'Alice', code: JSON.parse(req.data).code } });
    const page = render(id);
    page.instance.onLoad({ redirect: encodeURIComponent('/pages/pay/index?code=pc1') });
    await tap(page, '.login__submit');
    await flush();
    expect(getServices().store.getState()).toMatchObject({ loggedIn: true, user: { code: 'test-alice' } });
    expect(fake.calls.redirectTo).toEqual(['/pages/pay/index?code=pc1']);
  });

  test('the page that asked for login, right below, is reopened with the session', async () => {
    const fake = useFakeWx();
    fake.routes['POST /api/auth/wechat-login'] = () => json(200, { access_token: 'A', refresh_token: 'R', expires_in: 7200, sign_key: 'S' });
    global.getCurrentPages = () => [{ route: 'pages/home/index', options: {} }, { route: 'pages/pay/index', options: { code: 'pc1' } }, { route: 'pages/login/index', options: {} }];
    const page = render(id);
    page.instance.onLoad({ redirect: encodeURIComponent('/pages/pay/index?code=pc1') });
    await tap(page, '.login__submit');
    await flush();
    global.getCurrentPages = () => [];
    expect(fake.calls.navigateBack).toHaveLength(1);
    expect(fake.calls.redirectTo).toEqual(['/pages/pay/index?code=pc1']);
  });

  test('without a redirect, login just goes back', async () => {
    const fake = useFakeWx();
    fake.routes['POST /api/auth/wechat-login'] = () => json(200, { access_token: 'A', refresh_token: 'R', expires_in: 7200, sign_key: 'S' });
    const page = render(id);
    page.instance.onLoad({});
    await tap(page, '.login__submit');
    await flush();
    expect(fake.calls.navigateBack).toHaveLength(1);
    expect(fake.calls.redirectTo).toEqual([]);
  });

  test('a used code shows its message and stays on the page', async () => {
    const fake = useFakeWx();
    fake.routes['POST /api/auth/wechat-login'] = () => json(400, { code: 'WECHAT_CODE_USED', message: 'code been used', trace_id: 't' });
    const page = render(id);
    page.instance.onLoad({});
    await tap(page, '.login__submit');
    await flush();
    expect(text(page, '.login__error')).toBe('登录凭证已使用，请重新登录');
    expect(fake.calls.redirectTo).toEqual([]);
    expect(fake.calls.navigateBack).toEqual([]);
  });
});

describe('scan', () => {
  let id;
  beforeAll(() => {
    id = load('pages/scan/index');
  });

  test('a payment code opens the pay page', async () => {
    const fake = useFakeWx();
    fake.scanResult = { scanType: 'WX_CODE', path: 'pages/pay/index?code=pc_42' };
    const page = render(id);
    page.instance.onLoad({});
    await tap(page, '.scan__button');
    expect(fake.calls.navigateTo).toEqual(['/pages/pay/index?code=pc_42']);
  });

  test('cancelling the camera says so', async () => {
    const fake = useFakeWx();
    const page = render(id);
    page.instance.onLoad({});
    await tap(page, '.scan__button');
    expect(text(page, '.scan__message')).toBe('已取消扫码');
    expect(fake.calls.navigateTo).toEqual([]);
  });

  test('a foreign QR code is refused', async () => {
    const fake = useFakeWx();
    fake.scanResult = { scanType: 'QR_CODE', result: 'https://example.com/hello' };
    const page = render(id);
    page.instance.onLoad({});
    await tap(page, '.scan__button');
    expect(text(page, '.scan__message')).toBe('这不是本平台的收款码，请扫描商家的收款码');
  });
});

describe('pay entry (pages/pay/index?code=)', () => {
  let id;
  beforeAll(() => {
    id = load('pages/pay/index');
  });

  test('a fixed-amount code goes straight to confirmation', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/payment-codes/pc1'] = () => json(200, { id: 'pc1', merchant_name: '老王面馆', amount_fen: 1800 });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1' });
    await flush();
    expect(fake.calls.redirectTo).toEqual([`/payment/pages/confirm/index?code=pc1&amount=1800&name=${encodeURIComponent('老王面馆')}&fixed=1`]);
  });

  test('an open-amount code asks for the amount', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/payment-codes/pc2'] = () => json(200, { id: 'pc2', merchant_name: '小卖部' });
    const page = render(id);
    page.instance.onLoad({ q: encodeURIComponent('https://pay.example.cn/pay?code=pc2') });
    await flush();
    expect(fake.calls.redirectTo).toEqual([`/payment/pages/amount/index?code=pc2&name=${encodeURIComponent('小卖部')}`]);
  });

  test('a mini-program code (scene = the id without dashes) loads the dashed id', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const uuid = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    fake.routes[`GET /api/payment-codes/${uuid}`] = () => json(200, { id: uuid, merchant_name: '验收咖啡' });
    const page = render(id);
    page.instance.onLoad({ scene: uuid.replace(/-/g, '') });
    await flush();
    expect(fake.calls.redirectTo).toEqual([`/payment/pages/amount/index?code=${uuid}&name=${encodeURIComponent('验收咖啡')}`]);
  });

  test('a disabled code shows why, and retry asks again', async () => {
    const fake = useFakeWx({ loggedIn: true });
    let n = 0;
    fake.routes['GET /api/payment-codes/pc3'] = () => {
      n += 1;
      return json(409, { code: 'PAYMENT_CODE_DISABLED', message: 'disabled', trace_id: 't' });
    };
    const page = render(id);
    page.instance.onLoad({ code: 'pc3' });
    await flush();
    expect(text(page, '.pay__error')).toBe('该收款码已停用，请联系商家');
    await tap(page, '.pay__retry');
    await flush();
    expect(n).toBe(2);
  });

  test('not logged in: login first, then back to this code', async () => {
    const fake = useFakeWx();
    const page = render(id);
    page.instance.onLoad({ code: 'pc4' });
    await flush();
    expect(fake.calls.navigateTo).toEqual([`/pages/login/index?redirect=${encodeURIComponent('/pages/pay/index?code=pc4')}`]);
    expect(fake.calls.request).toEqual([]);
    // back without logging in: the page says why, and its button asks again
    page.instance.onShow();
    await flush();
    expect(text(page, '.pay__error')).toBe('登录后才能付款');
    await tap(page, '.pay__retry');
    expect(fake.calls.navigateTo).toHaveLength(2);
  });

  test('no code at all', async () => {
    useFakeWx();
    const page = render(id);
    page.instance.onLoad({});
    await flush();
    expect(text(page, '.pay__error')).toBe('收款码无效，请重新扫描商家的收款码');
  });
});
