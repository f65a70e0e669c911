import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'

const adjustPoints = vi.fn()
vi.mock('../src/api/admin', () => ({ adminApi: { adjustPoints: (...a: unknown[]) => adjustPoints(...a) } }))
const confirm = vi.fn()
vi.mock('element-plus', async (importOriginal) => ({
  ...(await importOriginal<typeof import('element-plus')>()),
  ElMessageBox: { confirm: (...a: unknown[]) => confirm(...a) },
  ElMessage: { success: vi.fn(), error: vi.fn() },
}))
const { default: PointsAdjustDialog } = await import('../src/components/PointsAdjustDialog.vue')

async function open() {
  const w = mount(PointsAdjustDialog, { props: { userId: null }, attachTo: document.body })
  await w.setProps({ userId: 'u-1', userLabel: '小明' })
  await flushPromises()
  return w
}
async function type(sel: string, value: string) {
  const el = document.body.querySelector<HTMLInputElement | HTMLTextAreaElement>(`[data-test="${sel}"]`)!
  el.value = value
  el.dispatchEvent(new Event('input'))
  await flushPromises()
}
const submit = async () => {
  document.body.querySelector<HTMLElement>('[data-test="adjust-submit"]')!.click()
  await flushPromises()
}

describe('PointsAdjustDialog', () => {
  beforeEach(() => {
    adjustPoints.mockReset().mockResolvedValue({})
    confirm.mockReset().mockResolvedValue('confirm')
  })
  afterEach(() => {
    document.body.innerHTML = ''
  })

  it('deducts points with a reason after confirmation', async () => {
    const w = await open()
    await type('adjust-points', '-50')
    await type('adjust-reason', ' 重复发放 ')
    await submit()
    await vi.waitFor(() => expect(adjustPoints).toHaveBeenCalledWith('u-1', { points: -50, reason: '重复发放' }))
    expect(String(confirm.mock.calls[0]![0])).toContain('扣减 50 积分')
    await flushPromises()
    expect(w.emitted('adjusted')).toEqual([[-50]])
    w.unmount()
  })

  it.each([
    ['0', '调整积分不能为 0'],
    ['1.5', '请输入整数积分'],
    ['', '请输入整数积分'],
  ])('refuses %j points', async (points, message) => {
    const w = await open()
    await type('adjust-points', points)
    await type('adjust-reason', 'r')
    await submit()
    await vi.waitFor(() => expect(document.body.textContent).toContain(message))
    expect(adjustPoints).not.toHaveBeenCalled()
    w.unmount()
  })

  it('requires a reason', async () => {
    const w = await open()
    await type('adjust-points', '10')
    await submit()
    await vi.waitFor(() => expect(document.body.textContent).toContain('请填写调整原因'))
    expect(adjustPoints).not.toHaveBeenCalled()
    w.unmount()
  })
})
