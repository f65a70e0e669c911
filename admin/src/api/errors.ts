// The server answers every failure as `{code, message, trace_id}` (see API.md). This module is
// the one place that turns those stable codes into what an operator reads.

export interface ApiErrorBody {
  code: string
  message: string
  trace_id?: string
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly serverMessage: string
  readonly traceId: string | undefined

  constructor(status: number, body: ApiErrorBody) {
    super(`${body.code}: ${body.message}`)
    this.name = 'ApiError'
    this.status = status
    this.code = body.code
    this.serverMessage = body.message
    this.traceId = body.trace_id
  }
}

/** Codes produced by the client itself, when no server answer could be read. */
export const NETWORK_ERROR = 'NETWORK_ERROR'
export const BAD_RESPONSE = 'BAD_RESPONSE'

export const ERROR_MESSAGES: Readonly<Record<string, string>> = {
  UNAUTHORIZED: '登录已失效，请重新登录',
  TOKEN_EXPIRED: '登录已过期，请重新登录',
  INVALID_CREDENTIALS: '用户名或密码错误',
  FORBIDDEN: '没有权限执行此操作',
  NOT_FOUND: '请求的记录不存在或已被删除',
  VALIDATION_FAILED: '提交的数据未通过校验',
  MALFORMED_JSON: '请求格式错误，请刷新页面后重试',
  BAD_BODY: '请求内容无法读取，请刷新页面后重试',
  INVALID_QUERY: '查询条件格式错误',
  INVALID_PATH: '请求地址中的参数格式错误',
  UNSUPPORTED_MEDIA_TYPE: '请求格式不受支持，请刷新页面后重试',
  PAYLOAD_TOO_LARGE: '提交的内容过大',
  METHOD_NOT_ALLOWED: '不支持该操作',
  RATE_LIMITED: '操作过于频繁，请稍后再试',
  REFUND_EXCEEDS_PAID: '退款金额超过订单可退金额',
  ORDER_NOT_REFUNDABLE: '该订单当前状态不可退款',
  POINTS_INSUFFICIENT: '用户可用积分不足',
  DATABASE_UNAVAILABLE: '数据库暂时不可用，请稍后重试',
  NOT_READY: '服务尚未就绪，请稍后重试',
  INTERNAL: '服务器内部错误，请稍后重试',
  [NETWORK_ERROR]: '无法连接服务器，请检查网络后重试',
  [BAD_RESPONSE]: '服务器返回了无法识别的响应',
}

/** Codes whose server message names the offending field, so it is worth showing as detail. */
const DETAIL_CODES = new Set(['VALIDATION_FAILED', 'MALFORMED_JSON', 'INVALID_QUERY', 'INVALID_PATH'])

/** Server-side failures the operator may need to report: show the trace id with them. */
const TRACE_CODES = new Set(['INTERNAL', 'DATABASE_UNAVAILABLE', BAD_RESPONSE])

export interface ErrorDescription {
  code: string
  message: string
  traceId?: string
}

export function describeError(err: unknown): ErrorDescription {
  if (err instanceof ApiError) {
    const known = ERROR_MESSAGES[err.code]
    if (known === undefined) {
      // An unknown code: the server's own words plus the trace id, so nothing is hidden.
      const base = err.serverMessage || `请求失败（HTTP ${err.status}）`
      return { code: err.code, message: withTrace(base, err.traceId), traceId: err.traceId }
    }
    let message = known
    if (DETAIL_CODES.has(err.code) && err.serverMessage) message += `：${err.serverMessage}`
    if (TRACE_CODES.has(err.code) || err.status >= 500) message = withTrace(message, err.traceId)
    return { code: err.code, message, traceId: err.traceId }
  }
  if (err instanceof Error && err.message) {
    return { code: 'CLIENT_ERROR', message: `操作失败：${err.message}` }
  }
  return { code: 'CLIENT_ERROR', message: '操作失败，请稍后重试' }
}

export function errorMessage(err: unknown): string {
  return describeError(err).message
}

function withTrace(message: string, traceId: string | undefined): string {
  return traceId ? `${message}（追踪号：${traceId}）` : message
}

/** Codes after which the stored session is useless and the operator must log in again. */
export function isSessionError(err: unknown): boolean {
  return err instanceof ApiError && err.status === 401
}
