// Merchant subpackage: register, status, payment codes with QR, takings by day, settlement,
// orders, refund.
const { load, render, useFakeWx, flush, text, tap, type } = require('../helpers/load');

const json = (status, data) => ({ status, data });

describe('register', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/register/index');
  });

  const fill = async (page, form) => {
    for (const [k, v] of Object.entries(form)) await type(page, `.register__${k}`, v);
  };
  const FORM = {
    merchant_name: '老王面馆',
    contact_name: '王师傅',
    contact_phone: '13812345678',
    business_license: '91310000ma1fl1234x',
    address: '上海市徐汇区漕溪北路 1 号',
  };

  test('checks fields before sending', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const page = render(id);
    await fill(page, Object.assign({}, FORM, { contact_phone: '12345' }));
    await tap(page, '.register__submit');
    expect(page.data.errors.contact_phone).toBe('请填写 11 位手机号');
    expect(fake.calls.request).toHaveLength(0);
  });

  test('submits the form as API.md names it and shows the status page', async () => {
    const fake = useFakeWx({ loggedIn: true });
    let sent;
    fake.routes['POST /api/merchants'] = (req) => {
      sent = JSON.parse(req.data);
      return json(201, { id: 'm1', status: 'pending' });
    };
    const page = render(id);
    await fill(page, FORM);
    await tap(page, '.register__submit');
    await flush();
    expect(sent).toEqual(Object.assign({}, FORM, { business_license: '91310000MA1FL1234X' }));
    expect(fake.calls.redirectTo).toEqual(['/merchant/pages/status/index']);
  });

  test('server validation errors are shown', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['POST /api/merchants'] = () => json(422, { code: 'VALIDATION_FAILED', message: 'bad', trace_id: 't' });
    const page = render(id);
    await fill(page, FORM);
    await tap(page, '.register__submit');
    await flush();
    expect(text(page, '.register__error')).toBe('填写的信息有误，请检查后重试');
  });
});

describe('status', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/status/index');
  });

  test('lists merchants with their status; approved ones get their tools', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/me'] = () =>
      json(200, [
        { id: 'm1', merchant_name: '老王面馆', status: 'approved', created_at: '2026-01-01T00:00:00Z' },
        { id: 'm2', merchant_name: '小卖部', status: 'pending' },
      ]);
    const page = render(id);
    page.instance.onShow();
    await flush();
    expect(page.querySelectorAll('.status__merchant')).toHaveLength(2);
    expect(page.querySelectorAll('.status__codes')).toHaveLength(1);
    expect(text(page, '.status__pending')).toBe('资料审核中，通过后即可生成收款码');
    await tap(page, '.status__codes');
    expect(fake.calls.navigateTo).toEqual([`/merchant/pages/codes/index?id=m1&name=${encodeURIComponent('老王面馆')}`]);
    await tap(page, '.status__settlement');
    expect(fake.calls.navigateTo[1]).toBe(`/merchant/pages/settlement/index?id=m1&name=${encodeURIComponent('老王面馆')}`);
  });

  test('no merchant yet', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/me'] = () => json(200, { items: [], next_cursor: null });
    const page = render(id);
    page.instance.onShow();
    await flush();
    expect(page.dom.textContent).toContain('你还没有注册或加入商户');
    await tap(page, '.status__register');
    expect(fake.calls.navigateTo).toEqual(['/merchant/pages/register/index']);
  });
});

describe('payment codes', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/codes/index');
  });

  test('lists codes, creates one with a fixed amount, shows a QR', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const codes = [{ id: 'pc1', label: '1 号收银台', amount_fen: null, status: 'active' }];
    let created;
    fake.routes['GET /api/merchants/m1/payment-codes'] = () => json(200, { items: codes.slice(), next_cursor: null });
    fake.routes['POST /api/merchants/m1/payment-codes'] = (req) => {
      created = JSON.parse(req.data);
      codes.push({ id: 'pc2', label: created.label, amount_fen: created.amount_fen });
      return json(201, codes[1]);
    };
    const page = render(id);
    page.instance.onLoad({ id: 'm1', name: encodeURIComponent('老王面馆') });
    await flush();
    expect(page.querySelectorAll('.codes__item')).toHaveLength(1);

    await tap(page, '.codes__create');
    expect(page.data.formError).toBe('请填写收款码名称，如“1 号收银台”');
    await type(page, '.codes__label', '早餐档口');
    await type(page, '.codes__amount', '6.5');
    await tap(page, '.codes__create');
    await flush(20);
    expect(created).toEqual({ label: '早餐档口', amount_fen: 650 });
    expect(page.querySelectorAll('.codes__item')).toHaveLength(2);

    await tap(page, '.codes__show');
    await flush();
    expect(fake.calls.downloadFile[0].url).toMatch(/\/api\/payment-codes\/pc1\/qr\.png$/);
    expect(page.querySelector('.codes__qr')).toBeTruthy();
  });

  test('a merchant not yet approved is told so', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m1/payment-codes'] = () => json(200, []);
    fake.routes['POST /api/merchants/m1/payment-codes'] = () => json(409, { code: 'MERCHANT_NOT_ACTIVE', message: 'pending', trace_id: 't' });
    const page = render(id);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    await type(page, '.codes__label', '收银台');
    await tap(page, '.codes__create');
    await flush();
    expect(text(page, '.codes__form-error')).toBe('商家暂未开通收款或已停用');
  });
});

describe('takings', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/takings/index');
  });

  test('asks for CST days and shows them newest first with totals', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const asked = [];
    fake.routes['GET /api/merchants/m1/stats'] = (req, u) => {
      asked.push([u.searchParams.get('from'), u.searchParams.get('to')]);
      return json(200, [
        { date: '2026-01-01', order_count: 2, amount_fen: 3000, refund_fen: 0, points_awarded: 30 },
        { date: '2026-01-02', order_count: 1, amount_fen: 1000, refund_fen: 500, points_awarded: 10 },
      ]);
    };
    const page = render(id);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    expect(asked[0][0]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(page.querySelectorAll('.takings__day')).toHaveLength(2);
    expect(page.data.dayRows[0].date).toBe('2026-01-02');
    expect(text(page, '.takings__net')).toBe('¥35.00');
    await tap(page, '.takings__range-30');
    await flush();
    expect(page.data.days).toBe(30);
    const span = (Date.parse(asked[1][1]) - Date.parse(asked[1][0])) / 86400000;
    expect(span).toBe(29);
  });
});

describe('settlement', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/settlement/index');
  });

  const day = (date, o) =>
    Object.assign({ date, order_count: 0, gross_fen: 0, refund_count: 0, refund_fen: 0, fee_fen: 0, fee_refund_fen: 0, net_fen: 0 }, o);

  test('asks for CST days, shows the days with business newest first and the net of the range', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const asked = [];
    fake.routes['GET /api/merchants/m1/settlements'] = (req, u) => {
      asked.push([u.searchParams.get('from'), u.searchParams.get('to')]);
      return json(200, {
        merchant_id: 'm1',
        from: u.searchParams.get('from'),
        to: u.searchParams.get('to'),
        fee_rate_bp: 60,
        items: [
          day('2026-01-01', { order_count: 2, gross_fen: 12345 + 750, fee_fen: 79, net_fen: 13095 - 79 }),
          day('2026-01-02'),
          day('2026-01-03', { refund_count: 1, refund_fen: 5000, fee_refund_fen: 30, net_fen: -4970 }),
        ],
        totals: { order_count: 2, gross_fen: 13095, refund_count: 1, refund_fen: 5000, fee_fen: 79, fee_refund_fen: 30, net_fen: 8046 },
      });
    };
    const page = render(id);
    page.instance.onLoad({ id: 'm1', name: encodeURIComponent('老王面馆') });
    await flush();
    expect(asked[0][0]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(page.querySelectorAll('.settlement__day')).toHaveLength(2);
    expect(page.data.dayRows.map((d) => d.date)).toEqual(['2026-01-03', '2026-01-01']);
    expect(page.data.dayRows[0]).toMatchObject({ refundText: '50.00', feeText: '-0.30', netText: '-49.70' });
    expect(page.data.dayRows[1]).toMatchObject({ grossText: '130.95', feeText: '0.79', netText: '130.16' });
    expect(text(page, '.settlement__net')).toBe('¥80.46');
    expect(text(page, '.settlement__breakdown')).toBe('收款 ¥130.95（2 笔） · 退款 ¥50.00（1 笔） · 手续费 ¥0.49');
    expect(text(page, '.settlement__rate')).toContain('0.6%');
    await tap(page, '.settlement__range-30');
    await flush();
    expect(page.data.days).toBe(30);
    const span = (Date.parse(asked[1][1]) - Date.parse(asked[1][0])) / 86400000;
    expect(span).toBe(29);
  });

  test('says which fees are the bill\'s and which are estimated', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m1/settlements'] = (req, u) =>
      json(200, {
        merchant_id: 'm1',
        from: u.searchParams.get('from'),
        to: u.searchParams.get('to'),
        fee_rate_bp: 60,
        items: [
          day('2026-01-01', { order_count: 2, gross_fen: 20000, fee_fen: 76, net_fen: 19924, fee_from_bill_orders: 2, fee_source: 'bill' }),
          day('2026-01-02', { order_count: 1, gross_fen: 1000, fee_fen: 6, net_fen: 994, fee_source: 'estimate' }),
        ],
        totals: { order_count: 3, gross_fen: 21000, refund_count: 0, refund_fen: 0, fee_fen: 82, fee_refund_fen: 0, net_fen: 20918, fee_from_bill_orders: 2, fee_from_bill_refunds: 0, fee_source: 'mixed' },
      });
    const page = render(id);
    page.instance.onLoad({ id: 'm1', name: encodeURIComponent('老王面馆') });
    await flush();
    expect(page.data.dayRows.map((d) => d.feeMark)).toEqual(['估', '']);
    expect(page.querySelectorAll('.settlement__fee-mark')).toHaveLength(1);
    expect(text(page, '.settlement__fee-source')).toBe('手续费来源：微信账单 2 笔，按费率估算 1 笔');
    expect(text(page, '.settlement__rate')).toContain('已对账的手续费取微信账单实收');
  });

  test('another owner\'s merchant reads as missing', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m9/settlements'] = () => json(404, { code: 'MERCHANT_NOT_FOUND', message: 'no such merchant', trace_id: 't' });
    const page = render(id);
    page.instance.onLoad({ id: 'm9' });
    await flush();
    expect(page.data.error).not.toBe('');
    expect(page.data.total).toBe(null);
    expect(page.querySelectorAll('.settlement__day')).toHaveLength(0);
  });
});

describe('merchant orders and refund', () => {
  let ordersId;
  let refundId;
  beforeAll(() => {
    ordersId = load('merchant/pages/orders/index');
    refundId = load('merchant/pages/refund/index');
  });

  test('a paid order opens the refund form; a closed one does not', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m1/orders'] = () =>
      json(200, {
        items: [
          { order_no: 'P1', status: 'paid', amount_fen: 2000, refunded_fen: 500 },
          { order_no: 'P2', status: 'closed', amount_fen: 100 },
        ],
        next_cursor: null,
      });
    const page = render(ordersId);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    const items = page.querySelectorAll('.morders__item');
    items[0].querySelector('.order-item').dispatchEvent('tap');
    items[1].querySelector('.order-item').dispatchEvent('tap');
    await flush();
    expect(fake.calls.navigateTo).toEqual(['/merchant/pages/refund/index?id=m1&order_no=P1&amount=2000&refunded=500']);
    expect(fake.calls.showToast).toEqual(['该订单当前不可退款']);
  });

  test('refund: at most what is left, with a reason, confirmed, sent once', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const sent = [];
    fake.routes['POST /api/merchants/m1/orders/P1/refund'] = (req) => {
      sent.push({ body: JSON.parse(req.data), signed: Boolean(req.header['X-Signature']) });
      return json(200, { order_no: 'P1', status: 'refunding' });
    };
    const page = render(refundId);
    page.instance.onLoad({ id: 'm1', order_no: 'P1', amount: '2000', refunded: '500' });
    await flush();
    expect(page.data.amountText).toBe('15.00');
    await type(page, '.refund__amount', '16');
    await tap(page, '.refund__submit');
    expect(text(page, '.refund__error')).toBe('最多可退 ¥15.00');
    await type(page, '.refund__amount', '5');
    await tap(page, '.refund__submit');
    expect(text(page, '.refund__error')).toBe('请填写退款原因');
    await type(page, '.refund__reason', '顾客退货');
    fake.modalAnswer = false;
    await tap(page, '.refund__submit');
    await flush();
    expect(sent).toHaveLength(0);
    fake.modalAnswer = true;
    await tap(page, '.refund__submit');
    await flush();
    expect(sent).toEqual([{ body: { amount_fen: 500, reason: '顾客退货' }, signed: true }]);
    expect(fake.calls.navigateBack).toHaveLength(1);
  });

  test('a refund that fails is not sent again by itself', async () => {
    const fake = useFakeWx({ loggedIn: true });
    let n = 0;
    fake.routes['POST /api/merchants/m1/orders/P1/refund'] = () => {
      n += 1;
      return json(503, { code: 'DATABASE_UNAVAILABLE', message: 'busy', trace_id: 'tr9' });
    };
    const page = render(refundId);
    page.instance.onLoad({ id: 'm1', order_no: 'P1', amount: '2000', refunded: '0' });
    await type(page, '.refund__reason', '重复收款');
    await tap(page, '.refund__submit');
    await flush();
    expect(n).toBe(1);
    expect(text(page, '.refund__error')).toBe('系统繁忙，请稍后重试（编号 tr9）');
  });
});
