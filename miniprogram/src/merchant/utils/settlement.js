const { fenToYuan } = require('../../utils/format');

/** The fee rate in basis points as a percentage for display: 60 -> "0.6%". */
function feeRateText(bp) {
  const n = Math.trunc(Number(bp) || 0);
  const whole = Math.floor(n / 100);
  const frac = String(n % 100).padStart(2, '0').replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''}%`;
}

// Where the fee came from: WeChat's trade bill once reconciled, else the configured-rate estimate.
const FEE_SOURCE = { bill: '微信账单', estimate: '按费率估算', mixed: '部分估算' };
// The mark next to a fee that is not (all) the bill's.
const FEE_MARK = { estimate: '估', mixed: '部分估' };

/** How many orders and refunds took the bill's fee, and how many the estimate. */
function feeSourceText(s) {
  const fromBill = (s.fee_from_bill_orders || 0) + (s.fee_from_bill_refunds || 0);
  const estimated = (s.order_count || 0) + (s.refund_count || 0) - fromBill;
  const parts = [];
  if (fromBill > 0) parts.push(`微信账单 ${fromBill} 笔`);
  if (estimated > 0) parts.push(`按费率估算 ${estimated} 笔`);
  return parts.join('，');
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
    feeSource: FEE_SOURCE[s.fee_source] || '',
    feeMark: FEE_MARK[s.fee_source] || '',
    feeDetail: feeSourceText(s),
  };
}

module.exports = { feeRateText, feeSourceText, settlementRow };
