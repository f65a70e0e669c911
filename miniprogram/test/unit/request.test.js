// The request layer against a fake wx.request: headers, signing, refresh, retries, errors.
const crypto = require('crypto');
const { createFakeWx, loggedIn } = require('../helpers/fake-wx');
const { createServices } = require('../../src/services/index');
const { BASE_URLS } = require('../../src/config/env');

function setup({ envVersion = 'develop', session = {} } = {}) {
  const fake = createFakeWx({ envVersion });
  if (session) loggedIn(fake, session);
  const svc = createServices(fake, { retryDelayMs: 0, sleep: () => Promise.resolve() });
  return { fake, svc, api: svc.api };
}

const json = (status, data, header) => ({ status, data, header });
const err = (status, code) => json(status, { code, message: code.toLowerCase(), trace_id: `t-${code}` });

function verify(req, signKey) {
  const u = new URL(req.url);
  const body = req.data === undefined ? '' : req.data;
  const canonical = [req.method, u.pathname + u.search, req.header['X-Timestamp'], req.header['X-Nonce'], crypto.createHash('sha256').update(body).digest('hex')].join('\n') + '\n';
  return crypto.createHmac('sha256', signKey).update(canonical).digest('hex') === req.header['X-Signature'];
}

test('base URL follows envVersion', async () => {
  for (const v of ['develop', 'trial', 'release']) {
    const { fake, api } = setup({ envVersion: v });
    fake.routes['GET /api/points/balance'] = () => json(200, { available: 1 });
    await api.points.balance();
    expect(fake.calls.request[0].url).toBe(`${BASE_URLS[v]}/api/points/balance`);
  }
});

test('GET carries the bearer token, no signature, and paging query', async () => {
  const { fake, api } = setup();
  fake.routes['GET /api/points/history'] = () => json(200, { items: [{ id: 1 }], next_cursor: 'c2' });
  const page = await api.points.history({ cursor: 'c1', limit: 5 });
  expect(page).toEqual({ items: [{ id: 1 }], next_cursor: 'c2' });
  const req = fake.calls.request[0];
  expect(req.header.Authorization).toBe('Bearer at-1');
  expect(req.header['X-Signature']).toBeUndefined();
  expect(req.url).toMatch(/\/api\/points\/history\?cursor=c1&limit=5$/);
});

test('mutating calls are signed over the exact path and body sent', async () => {
  const { fake, api } = setup();
  fake.routes['POST /api/merchants/m%201/orders/P1/refund'] = () => json(200, { ok: true });
  await api.merchants.refund('m 1', 'P1', { amount_fen: 100, reason: '顾客退货' });
  const req = fake.calls.request[0];
  expect(req.header['Content-Type']).toBe('application/json');
  expect(req.data).toBe('{"amount_fen":100,"reason":"顾客退货"}');
  expect(verify(req, 'sk-1')).toBe(true);
});

test('login is not signed and stores tokens, sign_key and user', async () => {
  const { fake, api, svc } = setup({ session: null });
  fake.routes['POST /api/auth/wechat-login'] = (req) => json(200, { access_token: 'A', refresh_token: 'R', expires_in: 7200, sign_key: 'S', user: { id: 'u9' }, echo: req.data });
  await api.auth.wechatLogin('test-bob');
  const req = fake.calls.request[0];
  expect(JSON.parse(req.data)).toEqual({ code: 'test-bob' });
  expect(req.header.Authorization).toBeUndefined();
  expect(req.header['X-Signature']).toBeUndefined();
  expect(svc.session.get()).toMatchObject({ access_token: 'A', refresh_token: 'R', sign_key: 'S' });
  expect(svc.store.getState()).toMatchObject({ loggedIn: true, user: { id: 'u9' } });
  expect(fake.getStorageSync('session.v1').access_token).toBe('A');
});

test('401 -> one refresh -> retry with the new token; concurrent 401s share the refresh', async () => {
  const { fake, api, svc } = setup();
  let refreshes = 0;
  fake.routes['POST /api/auth/refresh'] = (req) => {
    refreshes += 1;
    expect(JSON.parse(req.data)).toEqual({ refresh_token: 'rt-1' });
    return json(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 7200, sign_key: 'sk-2' });
  };
  fake.routes['GET /api/points/balance'] = (req) => (req.header.Authorization === 'Bearer at-2' ? json(200, { available: 7 }) : err(401, 'TOKEN_EXPIRED'));
  const [a, b] = await Promise.all([api.points.balance(), api.points.balance()]);
  expect(a.available).toBe(7);
  expect(b.available).toBe(7);
  expect(refreshes).toBe(1);
  expect(svc.session.get()).toMatchObject({ access_token: 'at-2', refresh_token: 'rt-2', sign_key: 'sk-2' });
});

test('a second 401 after refreshing ends the session and sends the user to login', async () => {
  const { fake, api, svc } = setup();
  fake.routes['POST /api/auth/refresh'] = () => json(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 7200 });
  fake.routes['GET /api/users/me'] = () => err(401, 'UNAUTHORIZED');
  await expect(api.users.me()).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: '登录已失效，请重新登录' });
  expect(svc.session.get()).toBeNull();
  expect(fake.calls.navigateTo[0]).toMatch(/^\/pages\/login\/index/);
  expect(fake.calls.request.filter((r) => r.url.endsWith('/api/auth/refresh'))).toHaveLength(1);
});

test('a refused refresh ends the session', async () => {
  const { fake, api, svc } = setup();
  fake.routes['POST /api/auth/refresh'] = () => err(401, 'UNAUTHORIZED');
  fake.routes['GET /api/users/me'] = () => err(401, 'TOKEN_EXPIRED');
  await expect(api.users.me()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  expect(svc.session.get()).toBeNull();
});

test('a token about to expire is refreshed silently before the call', async () => {
  const { fake, api } = setup({ session: { expires_at: Date.now() + 10e3 } });
  fake.routes['POST /api/auth/refresh'] = () => json(200, { access_token: 'at-2', refresh_token: 'rt-2', expires_in: 7200 });
  fake.routes['GET /api/users/me'] = (req) => json(200, { token: req.header.Authorization });
  expect(await api.users.me()).toEqual({ token: 'Bearer at-2' });
  expect(fake.calls.request.map((r) => new URL(r.url).pathname)).toEqual(['/api/auth/refresh', '/api/users/me']);
});

test('no session: nothing is sent and login is shown', async () => {
  const { fake, api } = setup({ session: null });
  await expect(api.points.balance()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  expect(fake.calls.request).toHaveLength(0);
  expect(fake.calls.navigateTo).toHaveLength(1);
});

test('GET is retried on 503 and network failure', async () => {
  const { fake, api } = setup();
  const answers = [err(503, 'DATABASE_UNAVAILABLE'), { fail: 'request:fail' }, json(200, { available: 3 })];
  fake.routes['GET /api/points/balance'] = () => answers.shift();
  expect(await api.points.balance()).toEqual({ available: 3 });
  expect(fake.calls.request).toHaveLength(3);
});

test('payment creation is retried with the same Idempotency-Key and a new nonce each time', async () => {
  const { fake, api } = setup();
  const answers = [{ fail: 'request:fail timeout' }, err(503, 'NOT_READY'), json(200, { order_no: 'P1', status: 'paying', pay_params: {} })];
  fake.routes['POST /api/payments'] = () => answers.shift();
  const order = await api.payments.create({ payment_code_id: 'pc1', amount_fen: 1250 }, 'key-1');
  expect(order.order_no).toBe('P1');
  const reqs = fake.calls.request;
  expect(reqs).toHaveLength(3);
  expect(new Set(reqs.map((r) => r.header['Idempotency-Key']))).toEqual(new Set(['key-1']));
  expect(new Set(reqs.map((r) => r.header['X-Nonce'])).size).toBe(3);
  reqs.forEach((r) => expect(verify(r, 'sk-1')).toBe(true));
  expect(JSON.parse(reqs[0].data)).toEqual({ payment_code_id: 'pc1', amount_fen: 1250 });
});

test('a POST without Idempotency-Key is never retried', async () => {
  const { fake, api } = setup();
  fake.routes['POST /api/payments/P1/cancel'] = () => ({ fail: 'request:fail' });
  await expect(api.payments.cancel('P1')).rejects.toMatchObject({ code: 'NETWORK_ERROR', message: '网络连接失败，请检查网络后重试' });
  expect(fake.calls.request).toHaveLength(1);
  fake.routes['POST /api/merchants/m1/orders/P1/refund'] = () => err(503, 'DATABASE_UNAVAILABLE');
  await expect(api.merchants.refund('m1', 'P1', { amount_fen: 1, reason: 'x' })).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
  expect(fake.calls.request).toHaveLength(2);
});

test('client errors are not retried and carry the Chinese message', async () => {
  const { fake, api } = setup();
  fake.routes['POST /api/points/deduct'] = () => err(409, 'POINTS_INSUFFICIENT');
  await expect(api.points.deduct({ points: 999, reason: 'x' }, 'k')).rejects.toMatchObject({ code: 'POINTS_INSUFFICIENT', message: '积分不足', traceId: 't-POINTS_INSUFFICIENT' });
  expect(fake.calls.request).toHaveLength(1);
});

test('retries stop after the limit', async () => {
  const { fake, api } = setup();
  fake.routes['GET /api/points/balance'] = () => err(503, 'NOT_READY');
  await expect(api.points.balance()).rejects.toMatchObject({ code: 'NOT_READY', message: '服务正在启动，请稍后重试' });
  expect(fake.calls.request).toHaveLength(3);
});

test('a phone clock that is off is corrected from the Date header before signing', async () => {
  const { fake, api } = setup();
  const serverNow = Date.now() + 3600e3; // the phone is an hour slow
  fake.routes['GET /api/users/me'] = () => json(200, {}, { Date: new Date(serverNow).toUTCString() });
  fake.routes['PATCH /api/users/me'] = () => json(200, {});
  await api.users.me();
  await api.users.update({ nickname: '小明' });
  const ts = Number(fake.calls.request[1].header['X-Timestamp']);
  expect(Math.abs(ts - serverNow / 1000)).toBeLessThan(5);
  expect(verify(fake.calls.request[1], 'sk-1')).toBe(true);
});

test('the QR image is downloaded with the bearer token', async () => {
  const { fake, api } = setup();
  expect(await api.paymentCodes.qrImage('pc 1')).toBe('wxfile://tmp/qr.png');
  expect(fake.calls.downloadFile[0].url).toMatch(/\/api\/payment-codes\/pc%201\/qr\.png$/);
  expect(fake.calls.downloadFile[0].header.Authorization).toBe('Bearer at-1');
});
