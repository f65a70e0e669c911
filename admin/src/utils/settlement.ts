// Where a settlement's WeChat fee came from (docs/payments.md, Settlement): the trade bill's
// own fee once a reconciliation run recorded it, otherwise the estimate at the configured rate.

type TagType = 'success' | 'warning' | 'info' | 'danger' | 'primary'

export type FeeSource = 'bill' | 'estimate' | 'mixed' | 'none'

const SOURCE: Record<FeeSource, { text: string; type: TagType }> = {
  bill: { text: '账单', type: 'success' },
  estimate: { text: '估算', type: 'warning' },
  mixed: { text: '部分估算', type: 'warning' },
  none: { text: '—', type: 'info' },
}

export const feeSource = (source: string) => SOURCE[source as FeeSource] ?? { text: source, type: 'info' as TagType }

/** "账单 3 笔 · 估算 2 笔": how many orders and refunds took the bill's fee, and how many the estimate. */
export function feeSourceDetail(s: {
  order_count: number
  refund_count: number
  fee_from_bill_orders: number
  fee_from_bill_refunds: number
}): string {
  const fromBill = s.fee_from_bill_orders + s.fee_from_bill_refunds
  const estimated = s.order_count + s.refund_count - fromBill
  const parts: string[] = []
  if (fromBill > 0) parts.push(`账单 ${fromBill} 笔`)
  if (estimated > 0) parts.push(`估算 ${estimated} 笔`)
  return parts.join(' · ')
}
