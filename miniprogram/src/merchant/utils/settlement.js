const { fenToYuan } = require('../../utils/format');

/** The fee rate in basis points as a percentage for display: 60 -> "0.6%". */
function feeRateText(bp) {
  const n = Math.trunc(Number(bp) || 0);
  const whole = Math.floor(n / 100);
  const frac = String(n % 100).padStart(2, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''}%`;
}

/** One day (or the totals) of GET /api/merchants/{id}/settlements, as the page shows it. */
function settlementRow(s) {
  const fee = (s.fee_fen || 0) - (s.fee_refund_fen || 0);
  return {
    orders: s.order_count || 0,
    refunds: s.refund_count || 0,
    grossText: fenToYuan(s.gross_fen),
    refundText: s.refund_fen ? fenToYuan(s.refund_fen) : '',
    feeText: fenToYuan(fee),
    netText: fenToYuan(s.net_fen),
  };
}

module.exports = { feeRateText, settlementRow };
