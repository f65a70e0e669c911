import type { PointsRuleFields } from '../api/admin'
import { fenToYuan, parseInteger, parseYuanToFen } from './money'

/** The rules form as typed: money in yuan (converted to fen exactly), the rest as integers. */
export interface RulesFormModel {
  points_per_yuan: string
  min_order_yuan: string
  max_order_yuan: string
  per_order_max_points: string
  daily_cap: string
  lifetime_cap: string
  expiry_days: string
}

export type RulesField = keyof RulesFormModel
export type RulesErrors = Partial<Record<RulesField, string>>

export const MAX_EXPIRY_DAYS = 3650

export function toFormModel(rule: PointsRuleFields): RulesFormModel {
  return {
    points_per_yuan: String(rule.points_per_yuan),
    min_order_yuan: fenToYuan(rule.min_order_fen, false),
    max_order_yuan: fenToYuan(rule.max_order_fen, false),
    per_order_max_points: String(rule.per_order_max_points),
    daily_cap: String(rule.daily_cap),
    lifetime_cap: String(rule.lifetime_cap),
    expiry_days: String(rule.expiry_days),
  }
}

/**
 * Checks the whole form and returns one message per invalid field (empty when valid), plus
 * the request body when valid. Cross-field rules: min <= max order amount, and the daily and
 * lifetime caps at least the per-order maximum (a smaller cap would silently lower it).
 */
export function validateRules(m: RulesFormModel): { errors: RulesErrors; value: PointsRuleFields | null } {
  const errors: RulesErrors = {}

  const int = (field: RulesField, label: string, min: number, max = Number.MAX_SAFE_INTEGER): number | null => {
    const n = parseInteger(m[field])
    if (n === null) {
      errors[field] = `${label}必须是整数`
      return null
    }
    if (n < min || n > max) {
      errors[field] = max === Number.MAX_SAFE_INTEGER ? `${label}不能小于 ${min}` : `${label}应在 ${min} 到 ${max} 之间`
      return null
    }
    return n
  }
  const money = (field: RulesField, label: string): number | null => {
    const fen = parseYuanToFen(m[field])
    if (fen === null) {
      errors[field] = `${label}应为不小于 0 的金额，最多两位小数`
      return null
    }
    return fen
  }

  const points_per_yuan = int('points_per_yuan', '积分比例', 1)
  const min_order_fen = money('min_order_yuan', '最低订单金额')
  const max_order_fen = money('max_order_yuan', '最高订单金额')
  const per_order_max_points = int('per_order_max_points', '单笔积分上限', 1)
  const daily_cap = int('daily_cap', '每日积分上限', 1)
  const lifetime_cap = int('lifetime_cap', '累计积分上限', 1)
  const expiry_days = int('expiry_days', '积分有效期', 1, MAX_EXPIRY_DAYS)

  if (min_order_fen !== null && max_order_fen !== null && min_order_fen > max_order_fen) {
    errors.max_order_yuan = '最高订单金额不能低于最低订单金额'
  }
  if (per_order_max_points !== null) {
    if (daily_cap !== null && daily_cap < per_order_max_points) errors.daily_cap = '每日积分上限不能小于单笔积分上限'
    if (lifetime_cap !== null && lifetime_cap < per_order_max_points) errors.lifetime_cap = '累计积分上限不能小于单笔积分上限'
  }
  if (daily_cap !== null && lifetime_cap !== null && lifetime_cap < daily_cap && !errors.lifetime_cap) {
    errors.lifetime_cap = '累计积分上限不能小于每日积分上限'
  }

  if (Object.keys(errors).length > 0) return { errors, value: null }
  return {
    errors,
    value: {
      points_per_yuan: points_per_yuan as number,
      min_order_fen: min_order_fen as number,
      max_order_fen: max_order_fen as number,
      per_order_max_points: per_order_max_points as number,
      daily_cap: daily_cap as number,
      lifetime_cap: lifetime_cap as number,
      expiry_days: expiry_days as number,
    },
  }
}
