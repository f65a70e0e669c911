const { fenToYuan } = require('../../utils/format');

/** Totals over the days shown; net is takings less refunds. */
function summarize(rows) {
  const t = rows.reduce(
    (acc, r) => ({
      orders: acc.orders + (r.order_count || 0),
      amount: acc.amount + (r.amount_fen || 0),
      refund: acc.refund + (r.refund_fen || 0),
      points: acc.points + (r.points_awarded || 0),
    }),
    { orders: 0, amount: 0, refund: 0, points: 0 },
  );
  return {
    orders: t.orders,
    amountText: fenToYuan(t.amount),
    refundText: fenToYuan(t.refund),
    netText: fenToYuan(t.amount - t.refund),
    points: t.points,
  };
}

module.exports = { summarize };
