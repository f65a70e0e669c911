import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import type { Order } from '../src/api/admin'
import { ApiError } from '../src/api/errors'

const refundOrder = vi.fn()
vi.mock('../src/api/admin', () => ({ adminApi: { refundOrder: (...a: unknown[]) => refundOrder(...a) } }))

const confirm = vi.fn()
vi.mock('element-plus', async (importOriginal) => {
  const actual = await importOriginal<typeof import('element-plus')>()
  return {
    ...actual,
    ElMessageBox: { confirm: (...a: unknown[]) => confirm(...a) },
    ElMessage: { success: vi.fn(), error: vi.fn() },
  }
})

const { default: RefundDialog } = await import('../src/components/RefundDialog.vue')

const order: Order = {
  order_no: 'P20261127000001',
  merchant_id: 'm-1',
  amount_fen: 10_000, // ¥100.00 paid
  refunded_fen: 2_550, // ¥25.50 already refunded
  status: 'partially_refunded',
  created_at: '2026-11-27T01:00:00Z',
}

// The dialog is teleported to <body>, so queries go through the document.
const $ = <T extends Element = HTMLElement>(sel: string) => document.body.querySelector<T>(sel)

async function open() {
  const w = mount(RefundDialog, { props: { order: null }, attachTo: document.body })
  await w.setProps({ order })
  await flushPromises()
  return w
}

async function type(sel: string, value: string) {
  const input = $<HTMLInputElement>(`input[data-test="${sel}"]`)
  if (!input) throw new Error(`no input ${sel}`)
  input.value = value
  input.dispatchEvent(new Event('input'))
  await flushPromises()
}

async function choosePartial() {
  const radios = document.body.querySelectorAll<HTMLInputElement>('[data-test="refund-mode"] input[type="radio"]')
  radios[1]!.checked = true
  radios[1]!.dispatchEvent(new Event('change'))
  await flushPromises()
}

async function submit() {
  $('[data-test="refund-submit"]')!.click()
  await flushPromises()
}

describe('RefundDialog', () => {
  beforeEach(() => {
    refundOrder.mockReset().mockResolvedValue({ out_refund_no: 'R1', status: 'processing' })
    confirm.mockReset().mockResolvedValue('confirm')
  })
  afterEach(() => {
    document.body.innerHTML = ''
  })

  it('shows what is left to refund', async () => {
    const w = await open()
    expect($('[data-test="refundable"]')!.textContent).toBe('¥74.50')
    w.unmount()
  })

  it('refunds the full remainder after confirmation', async () => {
    const w = await open()
    await type('refund-reason', '  顾客退货 ')
    await submit()
    await vi.waitFor(() => expect(refundOrder).toHaveBeenCalledOnce())
    expect(confirm).toHaveBeenCalledOnce()
    expect(String(confirm.mock.calls[0]![0])).toContain('¥74.50')
    expect(refundOrder).toHaveBeenCalledWith('P20261127000001', { amount_fen: 7450, reason: '顾客退货' })
    await flushPromises()
    expect(w.emitted('refunded')![0]).toEqual([{ out_refund_no: 'R1', status: 'processing' }, 7450])
    expect(w.emitted('close')).toHaveLength(1)
    w.unmount()
  })

  it('sends a partial amount in exact fen', async () => {
    const w = await open()
    await choosePartial()
    await type('refund-amount', '19.99')
    await type('refund-reason', '部分退货')
    await submit()
    await vi.waitFor(() => expect(refundOrder).toHaveBeenCalledOnce())
    expect(refundOrder).toHaveBeenCalledWith('P20261127000001', { amount_fen: 1999, reason: '部分退货' })
    w.unmount()
  })

  it('accepts exactly the refundable amount', async () => {
    const w = await open()
    await choosePartial()
    await type('refund-amount', '74.50')
    await type('refund-reason', 'r')
    await submit()
    await vi.waitFor(() => expect(refundOrder).toHaveBeenCalledWith('P20261127000001', { amount_fen: 7450, reason: 'r' }))
    w.unmount()
  })

  it.each([
    ['74.51', '退款金额不能超过可退金额 ¥74.50'],
    ['0', '退款金额必须大于 0'],
    ['0.00', '退款金额必须大于 0'],
    ['-1', '请输入正确的金额，最多两位小数'],
    ['1.234', '请输入正确的金额，最多两位小数'],
    ['abc', '请输入正确的金额，最多两位小数'],
  ])('refuses %s', async (amount, message) => {
    const w = await open()
    await choosePartial()
    await type('refund-amount', amount)
    await type('refund-reason', 'r')
    await submit()
    await vi.waitFor(() => expect(document.body.textContent).toContain(message))
    expect(confirm).not.toHaveBeenCalled()
    expect(refundOrder).not.toHaveBeenCalled()
    w.unmount()
  })

  it('requires a reason', async () => {
    const w = await open()
    await type('refund-reason', '   ')
    await submit()
    await vi.waitFor(() => expect(document.body.textContent).toContain('请填写退款原因'))
    expect(refundOrder).not.toHaveBeenCalled()
    w.unmount()
  })

  it('sends nothing when the confirmation is cancelled', async () => {
    confirm.mockRejectedValue('cancel')
    const w = await open()
    await type('refund-reason', 'r')
    await submit()
    await vi.waitFor(() => expect(confirm).toHaveBeenCalledOnce())
    await flushPromises()
    expect(refundOrder).not.toHaveBeenCalled()
    expect(w.emitted('refunded')).toBeUndefined()
    w.unmount()
  })

  it('shows the server refusal in Chinese and stays open', async () => {
    refundOrder.mockRejectedValue(new ApiError(409, { code: 'REFUND_EXCEEDS_PAID', message: 'exceeds', trace_id: 't' }))
    const w = await open()
    await type('refund-reason', 'r')
    await submit()
    await vi.waitFor(() => expect($('[data-test="refund-error"]')?.textContent).toContain('退款金额超过订单可退金额'))
    expect(w.emitted('close')).toBeUndefined()
    w.unmount()
  })
})
