import type { DailyOverview } from '../api/admin'

export interface OverviewTotals {
  orderCount: number
  amountFen: number
  refundFen: number
  newUsers: number
  pointsAwarded: number
  pointsSpent: number
  pointsExpired: number
  /** The mean of the days that had payment attempts, 0..1; null when none had. */
  successRate: number | null
}

export function totals(days: DailyOverview[]): OverviewTotals {
  const t: OverviewTotals = {
    orderCount: 0,
    amountFen: 0,
    refundFen: 0,
    newUsers: 0,
    pointsAwarded: 0,
    pointsSpent: 0,
    pointsExpired: 0,
    successRate: null,
  }
  let rateSum = 0
  let rateDays = 0
  for (const d of days) {
    t.orderCount += d.order_count
    t.amountFen += d.amount_fen
    t.refundFen += d.refund_fen
    t.newUsers += d.new_users
    t.pointsAwarded += d.points_awarded
    t.pointsSpent += d.points_spent
    t.pointsExpired += d.points_expired
    if (typeof d.payment_success_rate === 'number') {
      rateSum += d.payment_success_rate
      rateDays += 1
    }
  }
  t.successRate = rateDays > 0 ? rateSum / rateDays : null
  return t
}

/** 0.9876 -> "98.8%". */
export function formatRate(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || Number.isNaN(rate)) return '—'
  return `${(Math.round(rate * 1000) / 10).toFixed(1)}%`
}
