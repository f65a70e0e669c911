import { describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import PointsRulesForm from '../src/components/PointsRulesForm.vue'
import type { PointsRule } from '../src/api/admin'
import { validateRules, toFormModel, type RulesFormModel } from '../src/utils/rulesValidation'

const rule: PointsRule = {
  points_per_yuan: 1,
  min_order_fen: 100,
  max_order_fen: 100_000_000,
  per_order_max_points: 10_000,
  daily_cap: 50_000,
  lifetime_cap: 10_000_000,
  expiry_days: 365,
  effective_from: '2026-11-27T02:00:00Z',
}
const model = (patch: Partial<RulesFormModel> = {}): RulesFormModel => ({ ...toFormModel(rule), ...patch })

describe('validateRules', () => {
  it('accepts the default rule and converts yuan to fen exactly', () => {
    expect(toFormModel(rule).min_order_yuan).toBe('1.00')
    const { errors, value } = validateRules(model({ min_order_yuan: '19.99' }))
    expect(errors).toEqual({})
    expect(value).toEqual({
      points_per_yuan: 1,
      min_order_fen: 1999,
      max_order_fen: 100_000_000,
      per_order_max_points: 10_000,
      daily_cap: 50_000,
      lifetime_cap: 10_000_000,
      expiry_days: 365,
    })
  })

  it('requires integers', () => {
    const { errors, value } = validateRules(model({ points_per_yuan: '1.5', daily_cap: 'abc', per_order_max_points: '' }))
    expect(value).toBeNull()
    expect(errors.points_per_yuan).toBe('积分比例必须是整数')
    expect(errors.daily_cap).toBe('每日积分上限必须是整数')
    expect(errors.per_order_max_points).toBe('单笔积分上限必须是整数')
  })

  it('requires a positive ratio', () => {
    expect(validateRules(model({ points_per_yuan: '0' })).errors.points_per_yuan).toBe('积分比例不能小于 1')
    expect(validateRules(model({ points_per_yuan: '-2' })).errors.points_per_yuan).toBe('积分比例不能小于 1')
  })

  it('requires min <= max order amount', () => {
    const { errors } = validateRules(model({ min_order_yuan: '100', max_order_yuan: '99.99' }))
    expect(errors.max_order_yuan).toBe('最高订单金额不能低于最低订单金额')
    expect(validateRules(model({ min_order_yuan: '100', max_order_yuan: '100' })).errors).toEqual({})
    expect(validateRules(model({ min_order_yuan: '1.001' })).errors.min_order_yuan).toMatch(/两位小数/)
  })

  it('requires the caps to be at least the per-order maximum', () => {
    const { errors } = validateRules(model({ per_order_max_points: '500', daily_cap: '499', lifetime_cap: '100' }))
    expect(errors.daily_cap).toBe('每日积分上限不能小于单笔积分上限')
    expect(errors.lifetime_cap).toBe('累计积分上限不能小于单笔积分上限')
    expect(validateRules(model({ per_order_max_points: '500', daily_cap: '500', lifetime_cap: '500' })).errors).toEqual({})
  })

  it('bounds the expiry to 1..3650 days', () => {
    expect(validateRules(model({ expiry_days: '0' })).errors.expiry_days).toBe('积分有效期应在 1 到 3650 之间')
    expect(validateRules(model({ expiry_days: '3651' })).errors.expiry_days).toBe('积分有效期应在 1 到 3650 之间')
    expect(validateRules(model({ expiry_days: '1' })).errors).toEqual({})
    expect(validateRules(model({ expiry_days: '3650' })).errors).toEqual({})
  })
})

describe('PointsRulesForm', () => {
  const mountForm = () => mount(PointsRulesForm, { props: { rule }, attachTo: document.body })

  async function fill(wrapper: ReturnType<typeof mountForm>, field: string, value: string) {
    // el-input hands its attributes to the inner <input>
    await wrapper.find(`input[data-test="${field}"]`).setValue(value)
  }

  it('shows the current values and when the rule took effect', () => {
    const w = mountForm()
    expect((w.find('input[data-test="points_per_yuan"]').element as HTMLInputElement).value).toBe('1')
    expect((w.find('input[data-test="max_order_yuan"]').element as HTMLInputElement).value).toBe('1000000.00')
    expect(w.find('[data-test="effective_from"]').text()).toBe('2026/11/27 10:00:00')
    w.unmount()
  })

  it('emits the rule in fen when valid', async () => {
    const w = mountForm()
    await fill(w, 'points_per_yuan', '2')
    await fill(w, 'min_order_yuan', '0.5')
    await fill(w, 'expiry_days', '180')
    await w.find('form').trigger('submit')
    await flushPromises()
    expect(w.emitted('submit')).toEqual([
      [
        {
          points_per_yuan: 2,
          min_order_fen: 50,
          max_order_fen: 100_000_000,
          per_order_max_points: 10_000,
          daily_cap: 50_000,
          lifetime_cap: 10_000_000,
          expiry_days: 180,
        },
      ],
    ])
    w.unmount()
  })

  it('blocks submission and shows each message on its field', async () => {
    const w = mountForm()
    await fill(w, 'points_per_yuan', '0')
    await fill(w, 'min_order_yuan', '500')
    await fill(w, 'max_order_yuan', '100')
    await fill(w, 'daily_cap', '10')
    await fill(w, 'expiry_days', '4000')
    await w.find('form').trigger('submit')
    await flushPromises()
    // the form validates every field asynchronously; the messages appear as each one settles
    await vi.waitFor(() => {
      const text = w.text()
      expect(text).toContain('积分比例不能小于 1')
      expect(text).toContain('最高订单金额不能低于最低订单金额')
      expect(text).toContain('每日积分上限不能小于单笔积分上限')
      expect(text).toContain('积分有效期应在 1 到 3650 之间')
    })
    expect(w.emitted('submit')).toBeUndefined()
    w.unmount()
  })
})
