const fmt = require('../../src/utils/format');
const qr = require('../../src/utils/qr');
const { createStore, bind } = require('../../src/utils/store');
const { uuid4 } = require('../../src/utils/ids');
const env = require('../../src/config/env');
const { normalize } = require('../../src/points/utils/stats');

describe('money', () => {
  test('fen to yuan', () => {
    expect(fmt.fenToYuan(0)).toBe('0.00');
    expect(fmt.fenToYuan(5)).toBe('0.05');
    expect(fmt.fenToYuan(1250)).toBe('12.50');
    expect(fmt.fenToYuan(-300)).toBe('-3.00');
  });
  test('yuan to fen without floating point', () => {
    expect(fmt.yuanToFen('0.1')).toBe(10);
    expect(fmt.yuanToFen('12.34')).toBe(1234);
    expect(fmt.yuanToFen('19.99')).toBe(1999);
    expect(fmt.yuanToFen('0')).toBeNull();
    expect(fmt.yuanToFen('1.234')).toBeNull();
    expect(fmt.yuanToFen('abc')).toBeNull();
  });
  test('amount input is cleaned as typed', () => {
    expect(fmt.cleanAmountInput('12.345')).toBe('12.34');
    expect(fmt.cleanAmountInput('1.2.3')).toBe('1.23');
    expect(fmt.cleanAmountInput('.5')).toBe('0.5');
    expect(fmt.cleanAmountInput('007')).toBe('7');
    expect(fmt.cleanAmountInput('¥8a')).toBe('8');
  });
  test('CST days', () => {
    // 2026-01-01T17:00Z is already 2 January in China
    expect(fmt.cstDate(Date.parse('2026-01-01T17:00:00Z'))).toBe('2026-01-02');
    expect(fmt.cstRange(7, Date.parse('2026-01-10T01:00:00Z'))).toEqual({ from: '2026-01-04', to: '2026-01-10' });
  });
  test('status texts and phone masking', () => {
    expect(fmt.orderStatusText('partially_refunded')).toBe('部分退款');
    expect(fmt.pointsKindText('clawback')).toBe('退款扣回');
    expect(fmt.maskPhone('13812345678')).toBe('138****5678');
    expect(fmt.maskPhone('138****5678')).toBe('138****5678');
  });
});

describe('payment code from QR and launch options', () => {
  test('?code=', () => expect(qr.codeFromOptions({ code: 'pc_123' })).toBe('pc_123'));
  test('plain QR ?q=', () =>
    expect(qr.codeFromOptions({ q: encodeURIComponent('https://pay.example.cn/pay?code=pc-9&x=1') })).toBe('pc-9'));
  test('scene', () => {
    expect(qr.codeFromOptions({ scene: encodeURIComponent('code=abc') })).toBe('abc');
    expect(qr.codeFromOptions({ scene: 'abc' })).toBe('abc');
  });
  // What the server prints (src/http/qr): {APP_QR_BASE_URL}?code=<uuid>, and for the
  // mini-program code the scene <uuid without dashes> on pages/pay/index.
  const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
  test('the printed link, as WeChat passes it (options.q, URL-encoded)', () => {
    expect(qr.codeFromOptions({ q: encodeURIComponent(`https://pay.example.com/q?code=${id}`) })).toBe(id);
    expect(qr.codeFromOptions({ q: encodeURIComponent(`https://shop.cn/p?src=print&code=${id}`) })).toBe(id);
    expect(qr.codeFromScan({ result: `https://pay.example.com/q?code=${id}` })).toBe(id);
  });
  test('the mini-program code scene: 32 hex digits get the dashes back', () => {
    expect(qr.codeFromOptions({ scene: id.replace(/-/g, '') })).toBe(id);
    expect(qr.codeFromOptions({ scene: id.replace(/-/g, '').toUpperCase() })).toBe(id);
    expect(qr.codeFromScan({ path: `pages/pay/index?scene=${id.replace(/-/g, '')}` })).toBe(id);
  });
  test('rejects junk', () => {
    expect(qr.codeFromOptions({ code: '<script>' })).toBe('');
    expect(qr.codeFromOptions({})).toBe('');
  });
  test('scan results', () => {
    expect(qr.codeFromScan({ path: 'pages/pay/index?code=X1' })).toBe('X1');
    expect(qr.codeFromScan({ result: 'https://pay.example.cn/pay?code=X2' })).toBe('X2');
    expect(qr.codeFromScan({ result: 'hello' })).toBe('');
  });
});

describe('store', () => {
  test('zustand-style setState/subscribe and page binding', () => {
    const store = createStore((set) => ({ n: 0, inc: () => set((s) => ({ n: s.n + 1 })) }));
    const ctx = { data: {}, setData(d) { Object.assign(this.data, d); } };
    const unbind = bind(ctx, store, (s) => ({ n: s.n }));
    store.getState().inc();
    expect(ctx.data.n).toBe(1);
    unbind();
    store.getState().inc();
    expect(ctx.data.n).toBe(1);
    expect(store.getState().n).toBe(2);
  });
});

describe('ids and environments', () => {
  test('uuid v4 shape', () => expect(uuid4()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/));
  test('base URL per envVersion, override only in develop', () => {
    const store = new Map();
    const wxApi = (v) => ({ getAccountInfoSync: () => ({ miniProgram: { envVersion: v } }), getStorageSync: (k) => store.get(k) || '' });
    expect(env.baseUrl(wxApi('release'))).toBe(env.BASE_URLS.release);
    expect(env.baseUrl(wxApi('trial'))).toBe(env.BASE_URLS.trial);
    store.set(env.OVERRIDE_KEY, 'http://10.0.0.2:9000/');
    expect(env.baseUrl(wxApi('develop'))).toBe('http://10.0.0.2:9000');
    expect(env.baseUrl(wxApi('release'))).toBe(env.BASE_URLS.release);
  });
});

describe('points statistics', () => {
  test('accepts months + totals', () => {
    const r = normalize({ months: [{ month: '2026-01', earned: 10, spent: 4, expired: 1 }], totals: { earned: 10, spent: 4, expired: 1 } });
    expect(r.months[0]).toMatchObject({ month: '2026-01', earned: 10, spent: 4, earnedPct: 100, spentPct: 40 });
    expect(r.totals).toMatchObject({ earned: 10, spent: 4, expired: 1 });
  });
});

describe('merchant helpers', () => {
  const { validate } = require('../../src/merchant/utils/register');
  const { summarize } = require('../../src/merchant/utils/takings');
  test('register form validation', () => {
    const ok = { merchant_name: '老王面馆', contact_name: '王师傅', contact_phone: '13812345678', business_license: '91310000MA1FL1234X', address: '上海市徐汇区漕溪北路 1 号' };
    expect(validate(ok)).toEqual({});
    expect(Object.keys(validate(Object.assign({}, ok, { contact_phone: '123', business_license: 'x' })))).toEqual(['contact_phone', 'business_license']);
  });
  test('settlement rows and the fee rate', () => {
    const { feeRateText, settlementRow } = require('../../src/merchant/utils/settlement');
    expect([60, 38, 100, 0, 125].map(feeRateText)).toEqual(['0.6%', '0.38%', '1%', '0%', '1.25%']);
    expect(settlementRow({ order_count: 3, gross_fen: 13179, refund_count: 1, refund_fen: 5000, fee_fen: 79, fee_refund_fen: 30, net_fen: 8130, fee_from_bill_orders: 0, fee_from_bill_refunds: 0, fee_source: 'estimate' })).toEqual({
      orders: 3, refunds: 1, grossText: '131.79', refundText: '50.00', feeText: '0.49', netText: '81.30',
      feeSource: '按费率估算', feeMark: '估', feeDetail: '按费率估算 4 笔',
    });
    expect(settlementRow({})).toEqual({ orders: 0, refunds: 0, grossText: '0.00', refundText: '', feeText: '0.00', netText: '0.00', feeSource: '', feeMark: '', feeDetail: '' });
  });
  test('settlement fees from the bill, estimated or both', () => {
    const { settlementRow, feeSourceText } = require('../../src/merchant/utils/settlement');
    const day = { order_count: 2, gross_fen: 20000, refund_count: 1, refund_fen: 5000, fee_fen: 76, fee_refund_fen: 19, net_fen: 14943 };
    const billed = settlementRow(Object.assign({}, day, { fee_from_bill_orders: 2, fee_from_bill_refunds: 1, fee_source: 'bill' }));
    expect(billed).toMatchObject({ feeText: '0.57', feeSource: '微信账单', feeMark: '', feeDetail: '微信账单 3 笔' });
    const mixed = settlementRow(Object.assign({}, day, { fee_from_bill_orders: 2, fee_from_bill_refunds: 0, fee_source: 'mixed' }));
    expect(mixed).toMatchObject({ feeSource: '部分估算', feeMark: '部分估', feeDetail: '微信账单 2 笔，按费率估算 1 笔' });
    expect(feeSourceText({ order_count: 0, refund_count: 0 })).toBe('');
  });
  test('takings totals', () => {
    expect(summarize([{ order_count: 2, amount_fen: 3000, refund_fen: 500, points_awarded: 30 }, { order_count: 1, amount_fen: 100, refund_fen: 0, points_awarded: 1 }])).toEqual({
      orders: 3, amountText: '31.00', refundText: '5.00', netText: '26.00', points: 31,
    });
  });
});
