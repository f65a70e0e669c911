// Names and colours of what a reconciliation run reports (docs/payments.md, Reconciliation).

type TagType = 'success' | 'warning' | 'info' | 'danger' | 'primary'

const KIND: Record<string, { text: string; type: TagType; hint: string }> = {
  missing_here: { text: '本地未支付', type: 'warning', hint: '微信已收款、本地未记为已支付（通知丢失）：自动查单补记，积分只发一次' },
  missing_at_wechat: { text: '微信无记录', type: 'danger', hint: '本地已支付或已退款、账单中没有：需人工核对' },
  amount_mismatch: { text: '金额不符', type: 'danger', hint: '双方金额不同：只报告，不自动修复' },
  status_mismatch: { text: '状态不符', type: 'danger', hint: '双方状态不同：只报告，不自动修复' },
}

const RUN: Record<string, { text: string; type: TagType }> = {
  running: { text: '进行中', type: 'warning' },
  succeeded: { text: '已完成', type: 'success' },
  failed: { text: '失败', type: 'danger' },
}

export const discrepancyKind = (kind: string) => KIND[kind] ?? { text: kind, type: 'info' as TagType, hint: '' }
export const runStatus = (status: string) => RUN[status] ?? { text: status, type: 'info' as TagType }
export const runTrigger = (trigger: string) => (({ schedule: '每日任务', admin: '管理员' }) as Record<string, string>)[trigger] ?? trigger

/** Differences a run found, repaired or not. */
export function differences(run: {
  missing_here: number
  missing_at_wechat: number
  amount_mismatches: number
  status_mismatches: number
}): number {
  return run.missing_here + run.missing_at_wechat + run.amount_mismatches + run.status_mismatches
}
