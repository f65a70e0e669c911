const payflow = require('../../src/services/payflow');

const noSleep = () => Promise.resolve();

test('requestPayment passes the pay params and maps cancel and failure', async () => {
  const params = { timeStamp: '1', nonceStr: 'n', package: 'prepay_id=wx1', signType: 'RSA', paySign: 's' };
  let seen;
  const ok = { requestPayment: (o) => { seen = o; o.success({ errMsg: 'requestPayment:ok' }); } };
  await payflow.requestPayment(ok, params);
  expect(seen).toMatchObject(params);
  const cancel = { requestPayment: (o) => o.fail({ errMsg: 'requestPayment:fail cancel' }) };
  await expect(payflow.requestPayment(cancel, params)).rejects.toMatchObject({ code: 'PAYMENT_CANCELLED', message: '已取消支付' });
  const fail = { requestPayment: (o) => o.fail({ errMsg: 'requestPayment:fail (detail message)' }) };
  await expect(payflow.requestPayment(fail, params)).rejects.toMatchObject({ code: 'PAYMENT_FAILED' });
});

test('pollOrder waits through paying, then for the points', async () => {
  const answers = [{ status: 'paying' }, { status: 'paid', points_awarded: 0 }, { status: 'paid', points_awarded: 12 }];
  const api = { payments: { get: jest.fn(async () => answers.shift()) } };
  const order = await payflow.pollOrder(api, 'P1', { sleep: noSleep });
  expect(order).toEqual({ status: 'paid', points_awarded: 12 });
  expect(api.payments.get).toHaveBeenCalledTimes(3);
  // Each ask lets the server hold the answer until the order settles, within the deadline.
  for (const call of api.payments.get.mock.calls) {
    expect(call[0]).toBe('P1');
    expect(call[1].waitMs).toBeGreaterThan(0);
    expect(call[1].waitMs).toBeLessThanOrEqual(8000);
  }
});

test('pollOrder never asks the server to wait past its own deadline', async () => {
  let t = 0;
  const asked = [];
  const api = { payments: { get: async (no, o) => { asked.push(o.waitMs); t += o.waitMs; return { status: 'paying' }; } } };
  await expect(
    payflow.pollOrder(api, 'P1', { sleep: async (ms) => { t += ms; }, now: () => t, timeoutMs: 10000, intervalMs: 1000 }),
  ).rejects.toMatchObject({ code: 'PAYMENT_PENDING' });
  expect(asked[0]).toBe(8000);
  expect(asked.every((w) => w <= 8000)).toBe(true);
  expect(asked.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10000);
});

test('pollOrder rides over a network blip and stops on closed', async () => {
  const { ApiError } = require('../../src/utils/errors');
  const answers = [() => { throw new ApiError({ code: 'NETWORK_ERROR' }); }, () => ({ status: 'closed' })];
  const api = { payments: { get: async () => answers.shift()() } };
  expect(await payflow.pollOrder(api, 'P1', { sleep: noSleep })).toEqual({ status: 'closed' });
});

test('pollOrder gives up with PAYMENT_PENDING', async () => {
  let t = 0;
  const api = { payments: { get: async () => ({ status: 'paying' }) } };
  await expect(
    payflow.pollOrder(api, 'P1', { sleep: async (ms) => { t += ms; }, now: () => t, timeoutMs: 5000, intervalMs: 1000 }),
  ).rejects.toMatchObject({ code: 'PAYMENT_PENDING' });
});
