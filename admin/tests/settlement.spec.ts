import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import type { DaySettlement, MerchantDaySettlement, SettlementSums } from '../src/api/admin'
import { feeSource, feeSourceDetail } from '../src/utils/settlement'

const settlements = vi.fn()
vi.mock('../src/api/admin', () => ({
  adminApi: { settlements: (...a: unknown[]) => settlements(...a), settlementsCsv: vi.fn() },
}))
// The chart library is not what this page's tests are about.
vi.mock('../src/components/TrendChart.vue', () => ({ __esModule: true, default: { render: () => null } }))

const { default: SettlementsView } = await import('../src/views/SettlementsView.vue')

function sums(over: Partial<SettlementSums>): SettlementSums {
  return {
    order_count: 0,
    gross_fen: 0,
    refund_count: 0,
    refund_fen: 0,
    fee_fen: 0,
    fee_refund_fen: 0,
    net_fen: 0,
    fee_from_bill_orders: 0,
    fee_from_bill_refunds: 0,
    fee_source: 'none',
    ...over,
  }
}

const merchant = (id: string, over: Partial<SettlementSums>): MerchantDaySettlement => ({
  merchant_id: id,
  merchant_name: `${id} shop`,
  ...sums(over),
})

describe('fee source labels', () => {
  it('names where the fee came from', () => {
    expect(feeSource('bill')).toEqual({ text: '账单', type: 'success' })
    expect(feeSource('estimate')).toEqual({ text: '估算', type: 'warning' })
    expect(feeSource('mixed').text).toBe('部分估算')
    expect(feeSource('none').text).toBe('—')
    expect(feeSource('later')).toEqual({ text: 'later', type: 'info' })
  })

  it('counts the orders and refunds on each side', () => {
    const s = { order_count: 4, refund_count: 1, fee_from_bill_orders: 3, fee_from_bill_refunds: 1 }
    expect(feeSourceDetail(s)).toBe('账单 4 笔 · 估算 1 笔')
    expect(feeSourceDetail({ ...s, fee_from_bill_orders: 0, fee_from_bill_refunds: 0 })).toBe('估算 5 笔')
    expect(feeSourceDetail({ ...s, fee_from_bill_orders: 4 })).toBe('账单 5 笔')
    expect(feeSourceDetail({ order_count: 0, refund_count: 0, fee_from_bill_orders: 0, fee_from_bill_refunds: 0 })).toBe('')
  })
})

describe('SettlementsView', () => {
  it("shows each merchant's fee source and the day's, with the counts", async () => {
    settlements.mockImplementation(
      async (date: string): Promise<DaySettlement> => ({
        date,
        fee_rate_bp: 60,
        items: [
          merchant('m-a', { order_count: 2, gross_fen: 20_000, fee_fen: 76, net_fen: 19_924, fee_from_bill_orders: 2, fee_source: 'bill' }),
          merchant('m-b', { order_count: 1, gross_fen: 1_000, fee_fen: 6, net_fen: 994, fee_source: 'estimate' }),
        ],
        next_cursor: null,
        totals: sums({ order_count: 3, gross_fen: 21_000, fee_fen: 82, net_fen: 20_918, fee_from_bill_orders: 2, fee_source: 'mixed' }),
      }),
    )
    const w = mount(SettlementsView, { attachTo: document.body })
    await flushPromises()
    expect(settlements).toHaveBeenCalled()
    const day = w.find('[data-test="settle-fee-source"]')
    expect(day.text()).toBe('部分估算')
    expect(w.find('[data-test="settle-totals"]').text()).toContain('账单 2 笔 · 估算 1 笔')
    const rows = w.findAll('[data-test="settle-row-fee-source"]').map((t) => t.text())
    expect(rows).toEqual(['账单', '估算'])
    // The fee shown is the net fee, and the rate is the estimate's.
    expect(w.find('[data-test="settle-totals"]').text()).toContain('手续费（0.60%）')
    w.unmount()
  })
})
