// Payment subpackage: amount entry, confirmation, paying (success, cancel, failure), result, orders.
const { load, render, useFakeWx, flush, text, tap, type } = require('../helpers/load');

const json = (status, data) => ({ status, data });
const PAY_PARAMS = { timeStamp: '1767225600', nonceStr: 'n1', package: 'prepay_id=wx1', signType: 'RSA', paySign: 'sig' };

describe('amount entry', () => {
  let id;
  beforeAll(() => {
    id = load('payment/pages/amount/index');
  });

  test('typing an amount enables next, which carries fen', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1', name: encodeURIComponent('老王面馆') });
    await flush();
    expect(text(page, '.amount__merchant')).toBe('老王面馆');
    expect(page.data.valid).toBe(false);
    await type(page, '.amount__field', '12.345');
    expect(page.data.amountText).toBe('12.34');
    expect(page.data.valid).toBe(true);
    await tap(page, '.amount__next');
    expect(fake.calls.navigateTo).toEqual([`/payment/pages/confirm/index?code=pc1&amount=1234&name=${encodeURIComponent('老王面馆')}`]);
  });

  test('zero is not an amount', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1' });
    await type(page, '.amount__field', '0');
    expect(page.data.valid).toBe(false);
    expect(page.data.hint).toBe('请输入大于 0 的金额');
    page.instance.onNext();
    expect(fake.calls.navigateTo).toEqual([]);
  });
});

describe('confirm', () => {
  let id;
  beforeAll(() => {
    id = load('payment/pages/confirm/index');
  });

  test('shows amount and payee; confirm goes to paying, cancel goes back', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1', amount: '1800', name: encodeURIComponent('老王面馆'), fixed: '1' });
    await flush();
    expect(text(page, '.confirm__amount')).toBe('¥18.00');
    await tap(page, '.confirm__submit');
    expect(fake.calls.redirectTo).toEqual([`/payment/pages/pay/index?code=pc1&amount=1800&name=${encodeURIComponent('老王面馆')}`]);
    await tap(page, '.confirm__cancel');
    expect(fake.calls.navigateBack).toHaveLength(1);
  });
});

describe('paying', () => {
  let id;
  beforeAll(() => {
    id = load('payment/pages/pay/index');
  });

  function server(fake, { createAnswers, orderAnswers }) {
    const created = [];
    fake.routes['POST /api/payments'] = (req) => {
      created.push({ key: req.header['Idempotency-Key'], body: JSON.parse(req.data), signed: Boolean(req.header['X-Signature']) });
      return createAnswers.shift() || json(200, { order_no: 'P1', amount_fen: 1800, status: 'paying', pay_params: PAY_PARAMS });
    };
    fake.routes['GET /api/payments/P1'] = () => orderAnswers.shift() || json(200, { order_no: 'P1', status: 'paid', amount_fen: 1800, points_awarded: 18 });
    fake.routes['POST /api/payments/P1/cancel'] = () => json(200, { order_no: 'P1', status: 'closed' });
    return created;
  }

  test('create -> WeChat Pay -> paid -> result page', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.paymentOutcome = 'ok';
    const created = server(fake, { createAnswers: [], orderAnswers: [json(200, { order_no: 'P1', status: 'paying' })] });
    const page = render(id);
    page.instance.pollOptions = { intervalMs: 0 };
    page.instance.onLoad({ code: 'pc1', amount: '1800', name: encodeURIComponent('老王面馆') });
    await flush(30);
    expect(created).toEqual([{ key: expect.stringMatching(/^[0-9a-f-]{36}$/), body: { payment_code_id: 'pc1', amount_fen: 1800 }, signed: true }]);
    expect(fake.calls.requestPayment[0]).toMatchObject(PAY_PARAMS);
    expect(fake.calls.redirectTo).toEqual(['/payment/pages/result/index?order_no=P1']);
  });

  test('cancel in WeChat Pay: offers to pay again or close the order', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.paymentOutcome = 'cancel';
    server(fake, { createAnswers: [], orderAnswers: [] });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1', amount: '1800' });
    await flush(30);
    expect(page.data.step).toBe('cancelled');
    expect(text(page, '.paypage__cancelled')).toBe('你已取消付款，订单仍可继续支付');

    await tap(page, '.paypage__cancel-order');
    await flush(20);
    expect(fake.calls.showModal).toHaveLength(1);
    expect(fake.calls.request.some((r) => r.url.endsWith('/api/payments/P1/cancel'))).toBe(true);
    expect(fake.calls.navigateBack).toHaveLength(1);
  });

  test('pay again after cancelling reuses the same order', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.paymentOutcome = 'cancel';
    const created = server(fake, { createAnswers: [], orderAnswers: [] });
    const page = render(id);
    page.instance.pollOptions = { intervalMs: 0 };
    page.instance.onLoad({ code: 'pc1', amount: '1800' });
    await flush(30);
    fake.paymentOutcome = 'ok';
    await tap(page, '.paypage__pay-again');
    await flush(30);
    expect(created).toHaveLength(1);
    expect(fake.calls.requestPayment).toHaveLength(2);
    expect(fake.calls.redirectTo).toEqual(['/payment/pages/result/index?order_no=P1']);
  });

  test('a refused creation shows the reason; retry sends the same Idempotency-Key', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.paymentOutcome = 'ok';
    const created = server(fake, { createAnswers: [json(403, { code: 'RISK_BLOCKED', message: 'risk', trace_id: 't' })], orderAnswers: [] });
    const page = render(id);
    page.instance.pollOptions = { intervalMs: 0 };
    page.instance.onLoad({ code: 'pc1', amount: '1800' });
    await flush(30);
    expect(text(page, '.paypage__error')).toBe('出于安全考虑，本次操作已被拦截');
    await tap(page, '.paypage__retry');
    await flush(30);
    expect(created).toHaveLength(2);
    expect(created[1].key).toBe(created[0].key);
    expect(fake.calls.redirectTo).toEqual(['/payment/pages/result/index?order_no=P1']);
  });

  test('an order that is no longer payable is explained', async () => {
    const fake = useFakeWx({ loggedIn: true });
    server(fake, { createAnswers: [json(409, { code: 'ORDER_NOT_PAYABLE', message: 'closed', trace_id: 't' })], orderAnswers: [] });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1', amount: '1800' });
    await flush(30);
    expect(text(page, '.paypage__error')).toBe('订单已支付、已关闭或正在处理，无法再次支付');
    expect(fake.calls.requestPayment).toHaveLength(0);
  });

  test('WeChat Pay failing (not cancelled) shows a retry', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.paymentOutcome = 'system error';
    server(fake, { createAnswers: [], orderAnswers: [] });
    const page = render(id);
    page.instance.onLoad({ code: 'pc1', amount: '1800' });
    await flush(30);
    expect(page.data.step).toBe('failed');
    expect(text(page, '.paypage__error')).toBe('支付未完成，请重试');
  });
});

describe('result', () => {
  let id;
  beforeAll(() => {
    id = load('payment/pages/result/index');
  });

  test('paid order with points', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/payments/P1'] = () =>
      json(200, { order_no: 'P1', status: 'paid', amount_fen: 1800, refunded_fen: 0, merchant_name: '老王面馆', points_awarded: 18, paid_at: '2026-01-01T04:00:00Z' });
    const page = render(id);
    page.instance.onLoad({ order_no: 'P1' });
    await flush(20);
    expect(text(page, '.result__status')).toBe('支付成功');
    expect(text(page, '.result__amount')).toBe('¥18.00');
    expect(text(page, '.result__points')).toBe('获得 18 积分');
    await tap(page, '.result__to-points');
    expect(fake.calls.redirectTo).toEqual(['/points/pages/balance/index']);
  });

  test('points not in yet: waits for them', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const answers = [{ status: 'paid', points_awarded: 0 }, { status: 'paid', points_awarded: 0 }, { status: 'paid', points_awarded: 9 }];
    fake.routes['GET /api/payments/P2'] = () => json(200, Object.assign({ order_no: 'P2', amount_fen: 900 }, answers.shift() || { status: 'paid', points_awarded: 9 }));
    const page = render(id);
    page.instance.pollOptions = { intervalMs: 0 };
    page.instance.onLoad({ order_no: 'P2' });
    await flush(40);
    expect(text(page, '.result__points')).toBe('获得 9 积分');
  });

  test('closed order', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/payments/P3'] = () => json(200, { order_no: 'P3', status: 'closed', amount_fen: 100 });
    const page = render(id);
    page.instance.onLoad({ order_no: 'P3' });
    await flush(20);
    expect(text(page, '.result__status')).toBe('已关闭');
  });
});

describe('my orders', () => {
  let id;
  beforeAll(() => {
    id = load('payment/pages/orders/index');
  });

  test('pages through orders and opens one', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/payments'] = (req, u) =>
      u.searchParams.get('cursor') === 'c2'
        ? json(200, { items: [{ order_no: 'P3', status: 'closed', amount_fen: 300, merchant_name: 'C' }], next_cursor: null })
        : json(200, { items: [{ order_no: 'P1', status: 'paid', amount_fen: 100, merchant_name: 'A' }, { order_no: 'P2', status: 'refunded', amount_fen: 200, refunded_fen: 200, merchant_name: 'B' }], next_cursor: 'c2' });
    const page = render(id);
    page.instance.onLoad();
    await flush(20);
    expect(page.querySelectorAll('.orders__item')).toHaveLength(2);
    await page.instance.onReachBottom();
    await flush(20);
    expect(page.querySelectorAll('.orders__item')).toHaveLength(3);
    expect(page.data.finished).toBe(true);
    const first = page.querySelectorAll('.orders__item')[0];
    first.querySelector('.order-item').dispatchEvent('tap');
    await flush();
    expect(fake.calls.navigateTo).toEqual(['/payment/pages/result/index?order_no=P1']);
  });
});
