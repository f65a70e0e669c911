// The shopper's journey through the mini-program's own services, against any server that speaks
// API.md and a sandbox with `POST /sandbox/orders/{out_trade_no}/pay`:
// login -> scan a payment code -> create the payment -> wx.requestPayment (the sandbox's
// "shopper pays" control) -> poll until paid -> points shown.
const { createFetchWx } = require('./wx-fetch-shim');
const { createServices } = require('../../src/services/index');
const payflow = require('../../src/services/payflow');
const { codeFromScan } = require('../../src/utils/qr');
const { uuid4 } = require('../../src/utils/ids');

const trim = (u) => (u || '').replace(/\/+$/, '');

function servicesFor(base, name, extra = {}) {
  const shim = createFetchWx(
    Object.assign({ baseUrl: trim(base), loginName: name, onPay: () => Promise.reject(new Error('no payment expected')), scanPath: () => '' }, extra),
  );
  return { shim, svc: createServices(shim, { retryDelayMs: 200 }) };
}

function login(shim, api) {
  return new Promise((resolve) => shim.login({ success: resolve })).then((r) => api.auth.wechatLogin(r.code));
}

async function adminToken(base, { username, password }) {
  if (!password) throw new Error('no payment code id given and no admin password to approve a merchant with');
  const res = await fetch(`${trim(base)}/api/admin/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`admin login: ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

/** A merchant registers through the API module, an admin approves it, the merchant makes a code. */
async function makePaymentCode(base, runId, admin) {
  const { shim, svc } = servicesFor(base, `e2e-merchant-${runId}`);
  await login(shim, svc.api);
  const merchant = await svc.api.merchants.register({
    merchant_name: `E2E 面馆 ${runId}`,
    contact_name: '测试',
    contact_phone: '13800000000',
    business_license: '91310000MA1FL0000X',
    address: '上海市徐汇区测试路 1 号',
  });
  const token = await adminToken(base, admin);
  const res = await fetch(`${trim(base)}/api/admin/merchants/${encodeURIComponent(merchant.id)}/approve`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
  if (!res.ok) throw new Error(`approve merchant: ${res.status} ${await res.text()}`);
  const code = await svc.api.merchants.createCode(merchant.id, { label: 'E2E 收银台' });
  return code.id || code.code_id;
}

/**
 * Runs the journey and checks each step with `expect`. Returns what it saw, for the log.
 * @param {{base: string, sandbox: string, paymentCodeId?: string, amountFen?: number, admin?: {username, password}}} o
 */
async function runPayFlow({ base, sandbox, paymentCodeId, amountFen = 1000, admin = {} }) {
  const runId = uuid4().slice(0, 8);
  const codeId = paymentCodeId || (await makePaymentCode(base, runId, admin));
  let payingOrderNo = null;

  const { shim, svc } = servicesFor(base, `e2e-shopper-${runId}`, {
    scanPath: () => `pages/pay/index?code=${encodeURIComponent(codeId)}`,
    // The shopper pays in WeChat: the sandbox marks the order paid and notifies the server.
    onPay: async () => {
      const res = await fetch(`${trim(sandbox)}/sandbox/orders/${encodeURIComponent(payingOrderNo)}/pay`, { method: 'POST' });
      if (!res.ok) throw new Error(`sandbox pay: ${res.status} ${await res.text()}`);
    },
  });
  const { api } = svc;

  await login(shim, api);
  expect(svc.session.get().sign_key).toBeTruthy();

  const scanned = await new Promise((resolve) => shim.scanCode({ success: resolve }));
  const scannedId = codeFromScan(scanned);
  expect(scannedId).toBe(codeId);
  const paymentCode = await api.paymentCodes.get(scannedId);
  expect(paymentCode.merchant_name).toBeTruthy();
  const fen = paymentCode.amount_fen || amountFen;

  const before = await api.points.balance();

  const key = uuid4();
  const order = await payflow.createOrder(api, { paymentCodeId: scannedId, amountFen: fen, idempotencyKey: key });
  expect(order).toMatchObject({ amount_fen: fen });
  expect(order.pay_params).toEqual(expect.objectContaining({ package: expect.any(String), paySign: expect.any(String) }));
  // Same key, same order: what a retry after a lost answer gets.
  const again = await payflow.createOrder(api, { paymentCodeId: scannedId, amountFen: fen, idempotencyKey: key });
  expect(again.order_no).toBe(order.order_no);

  payingOrderNo = order.order_no;
  await payflow.requestPayment(shim, order.pay_params);
  const paid = await payflow.pollOrder(api, order.order_no, { intervalMs: 500, timeoutMs: 30000 });
  expect(paid.status).toBe('paid');
  expect(paid.points_awarded).toBeGreaterThan(0);

  const after = await api.points.balance();
  expect(after.available).toBe(before.available + paid.points_awarded);
  const history = await api.points.history({ limit: 5 });
  expect(history.items.some((r) => r.kind === 'award' && r.change === paid.points_awarded)).toBe(true);
  return { codeId, orderNo: order.order_no, points: paid.points_awarded, balance: after.available };
}

module.exports = { runPayFlow };
