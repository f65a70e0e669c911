// The API's error shape is {code, message, trace_id}. The server's `message` is English and meant
// for logs; shoppers and merchants see the Chinese text chosen here by `code`.

const MESSAGES = {
  // auth and session
  UNAUTHORIZED: '登录已失效，请重新登录',
  TOKEN_EXPIRED: '登录已过期，请重新登录',
  FORBIDDEN: '没有权限进行此操作',
  SIGNATURE_INVALID: '请求校验失败，请检查手机时间是否准确后重试',
  REPLAYED_REQUEST: '请求已过期或重复提交，请重试',
  WECHAT_LOGIN_FAILED: '微信登录失败，请稍后重试',
  WECHAT_CODE_USED: '登录凭证已使用，请重新登录',
  WECHAT_RATE_LIMITED: '微信登录过于频繁，请稍后再试',
  WECHAT_HIGH_RISK: '当前微信账号存在风险，暂时无法登录',
  // request shape
  NOT_FOUND: '要找的内容不存在或已删除',
  VALIDATION_FAILED: '填写的信息有误，请检查后重试',
  MALFORMED_JSON: '请求数据格式错误，请更新小程序后重试',
  BAD_BODY: '请求数据无法读取，请重试',
  INVALID_QUERY: '请求参数有误，请返回重试',
  INVALID_PATH: '请求地址有误，请返回重试',
  UNSUPPORTED_MEDIA_TYPE: '请求格式不受支持，请更新小程序后重试',
  PAYLOAD_TOO_LARGE: '提交的内容过大，请精简后重试',
  METHOD_NOT_ALLOWED: '不支持此操作，请更新小程序后重试',
  RATE_LIMITED: '操作太频繁，请稍后再试',
  IDEMPOTENCY_KEY_REUSED: '该请求已提交过且内容不同，请返回重新发起',
  // payments and points
  PAYMENT_CODE_DISABLED: '该收款码已停用，请联系商家',
  MERCHANT_NOT_ACTIVE: '商家暂未开通收款或已停用',
  AMOUNT_INVALID: '金额不正确，请重新输入',
  ORDER_NOT_PAYABLE: '订单已支付、已关闭或正在处理，无法再次支付',
  RISK_BLOCKED: '出于安全考虑，本次操作已被拦截',
  POINTS_INSUFFICIENT: '积分不足',
  // merchant staff
  INVITE_INVALID: '邀请码无效、已使用、已撤销或已过期，请向店主索取新的邀请码',
  ALREADY_STAFF: '你已是该商户的店主或员工，无需再次加入',
  TOO_MANY_INVITES: '待使用的邀请码太多，请先撤销不用的邀请码',
  INVITE_NOT_FOUND: '该邀请码已被使用、撤销或已过期',
  STAFF_NOT_FOUND: '该员工已不在本店',
  MERCHANT_NOT_FOUND: '商户不存在，或你已不是该商户的成员',
  // server health
  DATABASE_UNAVAILABLE: '系统繁忙，请稍后重试',
  NOT_READY: '服务正在启动，请稍后重试',
  INTERNAL: '系统开小差了，请稍后重试',
  // raised by the client itself
  NETWORK_ERROR: '网络连接失败，请检查网络后重试',
  TIMEOUT: '网络超时，请稍后重试',
  BAD_RESPONSE: '服务器返回了无法识别的数据，请稍后重试',
  PAYMENT_CANCELLED: '已取消支付',
  PAYMENT_FAILED: '支付未完成，请重试',
  PAYMENT_PENDING: '支付结果确认中，请稍后在订单中查看',
};

const FALLBACK_MESSAGE = '操作失败，请稍后重试';

// When a body carries no usable code, the status still says something.
const STATUS_CODES = {
  400: 'VALIDATION_FAILED',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'VALIDATION_FAILED',
  429: 'RATE_LIMITED',
  500: 'INTERNAL',
  502: 'INTERNAL',
  503: 'NOT_READY',
  504: 'TIMEOUT',
};

function messageFor(code) {
  return Object.prototype.hasOwnProperty.call(MESSAGES, code) ? MESSAGES[code] : FALLBACK_MESSAGE;
}

class ApiError extends Error {
  constructor({ code, status = 0, serverMessage = '', traceId = '' }) {
    super(messageFor(code));
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.serverMessage = serverMessage;
    this.traceId = traceId;
  }

  /** What a page shows: the Chinese message, and the trace id when support may need it. */
  get display() {
    return this.traceId && this.status >= 500 ? `${this.message}（编号 ${this.traceId}）` : this.message;
  }
}

/** Builds the error for a non-2xx answer from its status and (maybe unparsed) body. */
function fromResponse(status, body, headers = {}) {
  let data = body;
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data);
    } catch (e) {
      data = null;
    }
  }
  const traceId =
    (data && data.trace_id) || headers['X-Request-Id'] || headers['x-request-id'] || '';
  const code =
    data && typeof data.code === 'string' && data.code
      ? data.code
      : STATUS_CODES[status] || (status >= 500 ? 'INTERNAL' : 'UNKNOWN');
  return new ApiError({ code, status, serverMessage: (data && data.message) || '', traceId });
}

/** A message for anything a page catches, ApiError or not. */
function describe(err) {
  if (err && err.name === 'ApiError') return err.display;
  return FALLBACK_MESSAGE;
}

module.exports = { MESSAGES, FALLBACK_MESSAGE, ApiError, fromResponse, messageFor, describe };
