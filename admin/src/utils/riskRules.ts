// Risk rules as the server stores them (`condition` is JSON), described in Chinese and edited
// through a form model of strings; validation mirrors the server's (src/app/risk.rs), which
// stays the authority: anything it refuses comes back as a 422 and is shown as such.

export type RiskCondition =
  | { type: 'payments_in_window'; max: number; window_secs: number }
  | { type: 'payments_per_minute'; max: number }
  | { type: 'new_login_ip' }
  | { type: string; [extra: string]: unknown }

export type RiskAction = 'block' | 'require_verification' | (string & {})

export interface RiskRule {
  id: string
  name: string
  condition: RiskCondition
  action: RiskAction
  priority: number
  enabled: boolean
  updated_at: string
}

export interface RiskRulePatch {
  condition?: RiskCondition
  action?: RiskAction
  priority?: number
  enabled?: boolean
}

/** Longest window a velocity rule may count over (the server's MAX_WINDOW_SECS: 31 days). */
export const MAX_WINDOW_SECS = 31 * 24 * 3600
export const MAX_PRIORITY = 1_000_000

export const ACTION_OPTIONS = [
  { value: 'block', label: '拦截支付' },
  { value: 'require_verification', label: '要求验证' },
]

export const CONDITION_OPTIONS = [
  { value: 'payments_per_minute', label: '每分钟支付次数' },
  { value: 'payments_in_window', label: '时间窗内支付次数' },
  { value: 'new_login_ip', label: '新登录 IP' },
]

export function actionLabel(action: string): string {
  return ACTION_OPTIONS.find((o) => o.value === action)?.label ?? action
}

function num(c: RiskCondition, key: string): number {
  const v = (c as Record<string, unknown>)[key]
  return typeof v === 'number' ? v : NaN
}

/** A window in the largest whole unit: 3600 -> "1 小时", 90 -> "90 秒". */
export function formatWindow(secs: number): string {
  if (secs % 86400 === 0) return `${secs / 86400} 天`
  if (secs % 3600 === 0) return `${secs / 3600} 小时`
  if (secs % 60 === 0) return `${secs / 60} 分钟`
  return `${secs} 秒`
}

export function describeCondition(c: RiskCondition): string {
  switch (c.type) {
    case 'payments_per_minute':
      return `同一用户 1 分钟内已支付 ${num(c, 'max')} 次`
    case 'payments_in_window':
      return `同一用户 ${formatWindow(num(c, 'window_secs'))}内已支付 ${num(c, 'max')} 次`
    case 'new_login_ip':
      return '从该用户未用过的 IP 发起支付'
    default:
      return JSON.stringify(c)
  }
}

export interface RiskFormModel {
  type: string
  max: string
  window_secs: string
  action: string
  priority: string
}

export function toRiskForm(rule: RiskRule): RiskFormModel {
  const max = num(rule.condition, 'max')
  const window = num(rule.condition, 'window_secs')
  return {
    type: rule.condition.type,
    max: Number.isFinite(max) ? String(max) : '',
    window_secs: Number.isFinite(window) ? String(window) : '3600',
    action: rule.action,
    priority: String(rule.priority),
  }
}

function int(text: string): number | null {
  const t = text.trim()
  return /^-?\d+$/.test(t) ? Number(t) : null
}

export type RiskFormErrors = Partial<Record<keyof RiskFormModel, string>>

/** The patch to send (only what changed), or the errors to show next to the fields. */
export function validateRiskForm(
  model: RiskFormModel,
  current: RiskRule,
): { errors: RiskFormErrors; patch: RiskRulePatch | null } {
  const errors: RiskFormErrors = {}
  let condition: RiskCondition | null = null
  const max = int(model.max)
  const window = int(model.window_secs)
  if (model.type === 'payments_per_minute' || model.type === 'payments_in_window') {
    if (max === null) errors.max = '次数上限必须是整数'
    else if (max < 1) errors.max = '次数上限不能小于 1'
  }
  if (model.type === 'payments_in_window') {
    if (window === null) errors.window_secs = '时间窗必须是整数秒'
    else if (window < 1 || window > MAX_WINDOW_SECS) errors.window_secs = `时间窗为 1 至 ${MAX_WINDOW_SECS} 秒（31 天）`
  }
  if (model.type === 'payments_per_minute' && max !== null) condition = { type: model.type, max }
  else if (model.type === 'payments_in_window' && max !== null && window !== null)
    condition = { type: model.type, max, window_secs: window }
  else if (model.type === 'new_login_ip') condition = { type: model.type }
  else if (!CONDITION_OPTIONS.some((o) => o.value === model.type)) errors.type = '请选择规则条件'
  if (!ACTION_OPTIONS.some((o) => o.value === model.action)) errors.action = '请选择处置方式'
  const priority = int(model.priority)
  if (priority === null) errors.priority = '优先级必须是整数'
  else if (priority < 0 || priority > MAX_PRIORITY) errors.priority = `优先级为 0 至 ${MAX_PRIORITY}`
  if (Object.keys(errors).length > 0 || condition === null || priority === null) return { errors, patch: null }
  const patch: RiskRulePatch = {}
  if (JSON.stringify(condition) !== JSON.stringify(current.condition)) patch.condition = condition
  if (model.action !== current.action) patch.action = model.action
  if (priority !== current.priority) patch.priority = priority
  return { errors, patch }
}
