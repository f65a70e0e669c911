const { load, render, flush, text } = require('../helpers/load');

describe('money', () => {
  let id;
  beforeAll(() => {
    id = load('components/money/index');
  });

  test('renders fen as yuan and follows data changes', async () => {
    const comp = render(id, { fen: 1250 });
    await flush();
    expect(text(comp, '.money')).toBe('¥12.50');
    comp.setData({ fen: 5, sign: true });
    await flush();
    expect(text(comp, '.money')).toBe('¥+0.05');
  });
});

describe('order-item', () => {
  let id;
  beforeAll(() => {
    id = load('components/order-item/index');
  });

  test('shows merchant, amount, refund and status; tap selects the order', async () => {
    const order = { order_no: 'P1', merchant_name: '老王面馆', amount_fen: 2000, refunded_fen: 500, status: 'partially_refunded', paid_at: '2026-01-01T04:00:00Z' };
    const comp = render(id, { order });
    await flush();
    expect(text(comp, '.order-item__title')).toBe('老王面馆');
    expect(text(comp, '.order-item__amount')).toBe('¥20.00');
    expect(text(comp, '.order-item__refunded')).toBe('已退 ¥5.00');
    expect(comp.dom.textContent).toContain('部分退款');
    const onSelect = jest.fn();
    comp.addEventListener('select', onSelect);
    comp.querySelector('.order-item').dispatchEvent('tap');
    await flush();
    expect(onSelect.mock.calls[0][0].detail.order.order_no).toBe('P1');
  });

  test('merchant view shows the order number instead of the merchant', async () => {
    const comp = render(id, { order: { order_no: 'P9', merchant_name: 'X', amount_fen: 1, status: 'paid' }, showMerchant: false });
    await flush();
    expect(text(comp, '.order-item__title')).toBe('P9');
  });
});
