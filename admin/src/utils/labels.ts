// Chinese names of the states the API reports; an unknown state is shown as the server sent it.

type TagType = 'success' | 'warning' | 'info' | 'danger' | 'primary'

interface Label {
  text: string
  type: TagType
}

const ORDER: Record<string, Label> = {
  created: { text: '待支付', type: 'info' },
  paying: { text: '支付中', type: 'warning' },
  paid: { text: '已支付', type: 'success' },
  refunding: { text: '退款中', type: 'warning' },
  partially_refunded: { text: '部分退款', type: 'warning' },
  refunded: { text: '已退款', type: 'info' },
  closed: { text: '已关闭', type: 'info' },
}

const MERCHANT: Record<string, Label> = {
  pending: { text: '待审核', type: 'warning' },
  approved: { text: '已通过', type: 'success' },
  disabled: { text: '已停用', type: 'danger' },
  rejected: { text: '已驳回', type: 'danger' },
}

const USER: Record<string, Label> = {
  active: { text: '正常', type: 'success' },
  disabled: { text: '已禁用', type: 'danger' },
}

function pick(table: Record<string, Label>, status: string): Label {
  return table[status] ?? { text: status, type: 'info' }
}

export const orderStatus = (s: string) => pick(ORDER, s)
export const merchantStatus = (s: string) => pick(MERCHANT, s)
export const userStatus = (s: string) => pick(USER, s)

export const ORDER_STATUS_OPTIONS = Object.entries(ORDER).map(([value, l]) => ({ value, label: l.text }))

/** Orders the admin may refund: paid and not yet fully refunded. */
export function isRefundable(order: { status: string; amount_fen: number; refunded_fen: number }): boolean {
  return (order.status === 'paid' || order.status === 'partially_refunded') && order.amount_fen > order.refunded_fen
}
