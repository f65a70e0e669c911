import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { ApiError } from '../src/api/errors'
import {
  MAX_WINDOW_SECS,
  describeCondition,
  toRiskForm,
  validateRiskForm,
  type RiskFormModel,
  type RiskRule,
} from '../src/utils/riskRules'

const changeRiskRule = vi.fn()
vi.mock('../src/api/admin', () => ({ adminApi: { changeRiskRule: (...a: unknown[]) => changeRiskRule(...a) } }))

const confirm = vi.fn()
vi.mock('element-plus', async (importOriginal) => {
  const actual = await importOriginal<typeof import('element-plus')>()
  return {
    ...actual,
    ElMessageBox: { confirm: (...a: unknown[]) => confirm(...a) },
    ElMessage: { success: vi.fn(), error: vi.fn() },
  }
})

const { default: RiskRuleDialog } = await import('../src/components/RiskRuleDialog.vue')

const velocity: RiskRule = {
  id: '00000000-0000-7000-8000-000000000101',
  name: 'payment_velocity',
  condition: { type: 'payments_per_minute', max: 10 },
  action: 'block',
  priority: 10,
  enabled: true,
  updated_at: '2026-12-07T02:00:00Z',
}
const form = (patch: Partial<RiskFormModel> = {}): RiskFormModel => ({ ...toRiskForm(velocity), ...patch })

describe('risk rule descriptions and validation', () => {
  it('describes each condition in Chinese', () => {
    expect(describeCondition(velocity.condition)).toBe('同一用户 1 分钟内已支付 10 次')
    expect(describeCondition({ type: 'payments_in_window', max: 20, window_secs: 3600 })).toBe('同一用户 1 小时内已支付 20 次')
    expect(describeCondition({ type: 'payments_in_window', max: 5, window_secs: 86400 * 2 })).toBe('同一用户 2 天内已支付 5 次')
    expect(describeCondition({ type: 'new_login_ip' })).toBe('从该用户未用过的 IP 发起支付')
    // a condition this console does not know is shown as the server stores it
    expect(describeCondition({ type: 'future_rule', x: 1 })).toBe('{"type":"future_rule","x":1}')
  })

  it('sends only what changed', () => {
    expect(validateRiskForm(form(), velocity)).toEqual({ errors: {}, patch: {} })
    expect(validateRiskForm(form({ max: '25' }), velocity).patch).toEqual({ condition: { type: 'payments_per_minute', max: 25 } })
    expect(validateRiskForm(form({ action: 'require_verification', priority: '5' }), velocity).patch).toEqual({
      action: 'require_verification',
      priority: 5,
    })
    expect(validateRiskForm(form({ type: 'payments_in_window', max: '20', window_secs: '3600' }), velocity).patch).toEqual({
      condition: { type: 'payments_in_window', max: 20, window_secs: 3600 },
    })
    expect(validateRiskForm(form({ type: 'new_login_ip', max: 'ignored' }), velocity).patch).toEqual({
      condition: { type: 'new_login_ip' },
    })
  })

  it('refuses what the server would refuse, field by field', () => {
    const bad = (patch: Partial<RiskFormModel>) => validateRiskForm(form(patch), velocity)
    expect(bad({ max: '0' })).toEqual({ errors: { max: '次数上限不能小于 1' }, patch: null })
    expect(bad({ max: '2.5' }).errors.max).toBe('次数上限必须是整数')
    expect(bad({ type: 'payments_in_window', window_secs: '0' }).errors.window_secs).toMatch(/^时间窗为 1 至/)
    expect(bad({ type: 'payments_in_window', window_secs: String(MAX_WINDOW_SECS + 1) }).errors.window_secs).toMatch(/31 天/)
    expect(bad({ type: 'payments_in_window', window_secs: String(MAX_WINDOW_SECS) }).errors).toEqual({})
    expect(bad({ priority: '-1' }).errors.priority).toBe('优先级为 0 至 1000000')
    expect(bad({ priority: 'x' }).errors.priority).toBe('优先级必须是整数')
    expect(bad({ action: 'allow' }).errors.action).toBe('请选择处置方式')
  })
})

// The dialog is teleported to <body>, so queries go through the document.
const $ = <T extends Element = HTMLElement>(sel: string) => document.body.querySelector<T>(sel)

async function open() {
  const w = mount(RiskRuleDialog, { props: { rule: null }, attachTo: document.body })
  await w.setProps({ rule: velocity })
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

async function submit() {
  $('[data-test="risk-submit"]')!.click()
  await flushPromises()
}

describe('RiskRuleDialog', () => {
  beforeEach(() => {
    changeRiskRule.mockReset().mockImplementation((_id: string, patch: object) => Promise.resolve({ ...velocity, ...patch }))
    confirm.mockReset().mockResolvedValue('confirm')
  })
  afterEach(() => {
    document.body.innerHTML = ''
  })

  it('shows the rule and saves a new threshold after confirmation', async () => {
    const w = await open()
    expect($<HTMLInputElement>('input[data-test="risk-max"]')!.value).toBe('10')
    expect($<HTMLInputElement>('input[data-test="risk-priority"]')!.value).toBe('10')
    await type('risk-max', '25')
    await submit()
    await vi.waitFor(() => expect(changeRiskRule).toHaveBeenCalledOnce())
    expect(String(confirm.mock.calls[0]![0])).toContain('同一用户 1 分钟内已支付 25 次时拦截支付')
    expect(changeRiskRule).toHaveBeenCalledWith(velocity.id, { condition: { type: 'payments_per_minute', max: 25 } })
    await flushPromises()
    expect(w.emitted('saved')![0]![0]).toMatchObject({ condition: { type: 'payments_per_minute', max: 25 } })
    expect(w.emitted('close')).toHaveLength(1)
    w.unmount()
  })

  it('sends nothing for a bad threshold and shows why', async () => {
    const w = await open()
    await type('risk-max', '0')
    await submit()
    await vi.waitFor(() => expect(document.body.textContent).toContain('次数上限不能小于 1'))
    expect(confirm).not.toHaveBeenCalled()
    expect(changeRiskRule).not.toHaveBeenCalled()
    w.unmount()
  })

  it('sends nothing when cancelled, and nothing when unchanged', async () => {
    confirm.mockRejectedValue('cancel')
    const w = await open()
    await type('risk-max', '12')
    await submit()
    expect(changeRiskRule).not.toHaveBeenCalled()
    await type('risk-max', '10')
    await submit()
    expect(changeRiskRule).not.toHaveBeenCalled()
    expect(w.emitted('close')).toHaveLength(1)
    w.unmount()
  })

  it("shows the server's refusal and stays open", async () => {
    changeRiskRule.mockRejectedValue(
      new ApiError(422, { code: 'VALIDATION_FAILED', message: 'max at least 1', trace_id: 't-1' }),
    )
    const w = await open()
    await type('risk-max', '11')
    await submit()
    await vi.waitFor(() => expect($('[data-test="risk-error"]')).not.toBeNull())
    expect(w.emitted('close')).toBeUndefined()
    w.unmount()
  })
})
