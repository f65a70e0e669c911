// Typed calls for the admin routes of API.md. Field names follow the contract; fields marked
// optional are extras the server may add, shown when present.
import { buildUrl, fetchApi, http, request } from './http'
import { ApiError, BAD_RESPONSE } from './errors'
import type { RiskRule, RiskRulePatch } from '../utils/riskRules'

export type { RiskRule, RiskRulePatch } from '../utils/riskRules'

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface PageQuery {
  cursor?: string | null
  limit?: number
}

export interface LoginResponse {
  access_token: string
  refresh_token: string
  expires_in: number
  [extra: string]: unknown
}

export type MerchantStatus = 'pending' | 'approved' | 'disabled' | (string & {})

export interface Merchant {
  id: string
  merchant_name: string
  contact_name: string
  contact_phone?: string
  contact_phone_masked?: string
  business_license: string
  address: string
  status: MerchantStatus
  owner_user_id?: string
  reviewed_by?: string | null
  reviewed_at?: string | null
  created_at: string
  updated_at?: string
}

export type UserStatus = 'active' | 'disabled'

export interface AdminUser {
  id: string
  nickname?: string | null
  avatar?: string | null
  phone?: string | null
  phone_masked?: string | null
  status: UserStatus | (string & {})
  points_available?: number
  created_at: string
  last_login_at?: string | null
}

export type OrderStatus =
  | 'created'
  | 'paying'
  | 'paid'
  | 'refunding'
  | 'partially_refunded'
  | 'refunded'
  | 'closed'

export interface Order {
  order_no: string
  user_id?: string
  merchant_id: string
  merchant_name?: string
  amount_fen: number
  refunded_fen: number
  status: OrderStatus | (string & {})
  points_awarded?: number
  description?: string
  wechat_transaction_id?: string | null
  paid_at?: string | null
  closed_at?: string | null
  created_at: string
  refunds?: RefundRecord[]
}

export interface RefundRecord {
  out_refund_no: string
  amount_fen: number
  reason: string
  status: string
  points_clawed_back?: number
  created_at: string
  success_at?: string | null
}

export interface RefundRequest {
  amount_fen: number
  reason: string
}

export interface RefundResponse {
  out_refund_no?: string
  status?: string
  amount_fen?: number
  [extra: string]: unknown
}

export interface PointsRuleFields {
  points_per_yuan: number
  min_order_fen: number
  max_order_fen: number
  per_order_max_points: number
  daily_cap: number
  lifetime_cap: number
  expiry_days: number
}

export interface PointsRule extends PointsRuleFields {
  id?: string
  effective_from: string
  created_by?: string
  created_at?: string
}

export interface AdjustPointsRequest {
  points: number
  reason: string
}

export interface AuditEntry {
  id: string
  actor_type: string
  actor_id: string
  action: string
  target_type: string
  target_id: string
  before?: unknown
  after?: unknown
  before_json?: string | null
  after_json?: string | null
  trace_id: string
  ip?: string | null
  created_at: string
}

export interface DailyOverview {
  date: string
  order_count: number
  amount_fen: number
  refund_fen: number
  new_users: number
  points_awarded: number
  points_spent: number
  points_expired: number
  /** Share of payment attempts that succeeded that day, 0..1; null when there were none. */
  payment_success_rate: number | null
}

export interface SettlementSums {
  order_count: number
  gross_fen: number
  refund_count: number
  refund_fen: number
  fee_fen: number
  fee_refund_fen: number
  net_fen: number
  /** Orders whose fee is WeChat's from a reconciled trade bill (the rest are estimated). */
  fee_from_bill_orders: number
  /** Refunds whose returned fee is WeChat's from a reconciled trade bill. */
  fee_from_bill_refunds: number
  fee_source: 'bill' | 'estimate' | 'mixed' | 'none'
}

export interface MerchantDaySettlement extends SettlementSums {
  merchant_id: string
  merchant_name: string
}

export interface DaySettlement {
  date: string
  fee_rate_bp: number
  items: MerchantDaySettlement[]
  next_cursor: string | null
  /** Over every merchant of the day, not only this page. */
  totals: SettlementSums
}

export interface ReconciliationRun {
  id: string
  bill_date: string
  status: 'running' | 'succeeded' | 'failed' | (string & {})
  trigger: string
  requested_by?: string | null
  bill_rows: number
  matched: number
  missing_here: number
  missing_at_wechat: number
  amount_mismatches: number
  status_mismatches: number
  repaired: number
  error?: string | null
  started_at: string
  finished_at?: string | null
}

export interface Discrepancy {
  id: string
  kind: string
  order_no: string
  out_refund_no?: string | null
  our_amount_fen?: number | null
  wechat_amount_fen?: number | null
  our_status?: string | null
  wechat_status?: string | null
  repaired_at?: string | null
  repair_note?: string | null
}

/** The overview may come as a bare list or wrapped as `{items}` / `{days}`; accept each. */
type OverviewAnswer = DailyOverview[] | { items?: DailyOverview[]; days?: DailyOverview[] }

const enc = encodeURIComponent

export const adminApi = {
  login: (username: string, password: string) =>
    request<LoginResponse>('POST', '/api/admin/login', { body: { username, password }, anonymous: true }),

  refresh: (refresh_token: string) =>
    request<LoginResponse>('POST', '/api/auth/refresh', { body: { refresh_token }, anonymous: true }),

  /** Ends the session on the server: its access and refresh tokens stop working. */
  logout: () => request<void>('POST', '/api/auth/logout'),

  overview: async (from: string, to: string): Promise<DailyOverview[]> => {
    const data = await http.get<OverviewAnswer>('/api/admin/stats/overview', { from, to })
    if (Array.isArray(data)) return data
    return data.items ?? data.days ?? []
  },

  merchants: (q: PageQuery & { status?: string }) => http.get<Page<Merchant>>('/api/admin/merchants', { ...q }),
  approveMerchant: (id: string) => http.post<Merchant | undefined>(`/api/admin/merchants/${enc(id)}/approve`),
  disableMerchant: (id: string) => http.post<Merchant | undefined>(`/api/admin/merchants/${enc(id)}/disable`),

  users: (q: PageQuery & { q?: string }) => http.get<Page<AdminUser>>('/api/admin/users', { ...q }),
  setUserStatus: (id: string, status: UserStatus) =>
    http.put<AdminUser | undefined>(`/api/admin/users/${enc(id)}/status`, { status }),

  orders: (q: PageQuery & { status?: string; merchant_id?: string; from?: string; to?: string }) =>
    http.get<Page<Order>>('/api/admin/orders', { ...q }),
  refundOrder: (orderNo: string, body: RefundRequest) =>
    http.post<RefundResponse>(`/api/admin/orders/${enc(orderNo)}/refund`, body),

  pointsRules: () => http.get<PointsRule>('/api/admin/points-rules'),
  updatePointsRules: (rule: PointsRuleFields) => http.put<PointsRule>('/api/admin/points-rules', rule),

  riskRules: async (): Promise<RiskRule[]> => (await http.get<{ items: RiskRule[] }>('/api/admin/risk-rules')).items,
  /** Audited; in force at once on this instance, within seconds on the others. */
  changeRiskRule: (id: string, patch: RiskRulePatch) =>
    http.patch<RiskRule>(`/api/admin/risk-rules/${enc(id)}`, patch),

  adjustPoints: (userId: string, body: AdjustPointsRequest) =>
    http.post<unknown>(`/api/admin/points/${enc(userId)}/adjust`, body),

  auditLog: (q: PageQuery) => http.get<Page<AuditEntry>>('/api/admin/audit-log', { ...q }),

  settlements: (date: string, cursor?: string) =>
    http.get<DaySettlement>('/api/admin/settlements', { date, cursor, limit: 100 }),
  settlementsCsv: (date: string) => csv(buildUrl('/api/admin/settlements.csv', { date })),

  reconciliationRuns: (cursor?: string) =>
    http.get<Page<ReconciliationRun>>('/api/admin/reconciliation/runs', { cursor, limit: 50 }),
  /** The run's fields with its differences beside them. */
  reconciliationRun: (id: string) =>
    http.get<ReconciliationRun & { discrepancies: Discrepancy[] }>(`/api/admin/reconciliation/runs/${enc(id)}`),
  /** Downloads the day's bill from WeChat and matches it now; answers the finished run. */
  reconcile: (date: string) => http.post<ReconciliationRun>('/api/admin/reconciliation/runs', { date }),

  ordersCsv: (from: string, to: string): Promise<Blob> => csv(buildUrl('/api/admin/reports/orders.csv', { from, to })),
}

/** A CSV needs the bearer token, so it is fetched and handed to the browser as a Blob. */
async function csv(url: string): Promise<Blob> {
  const res = await fetchApi('GET', url)
  if (!res.ok) {
    let body: { code?: string; message?: string; trace_id?: string } = {}
    try {
      body = await res.json()
    } catch {
      // not JSON
    }
    throw new ApiError(res.status, {
      code: body.code ?? BAD_RESPONSE,
      message: body.message ?? `HTTP ${res.status}`,
      trace_id: body.trace_id ?? res.headers.get('X-Request-Id') ?? undefined,
    })
  }
  return res.blob()
}
