import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError, ERROR_MESSAGES, describeError, errorMessage } from '../src/api/errors'
import { request, setSessionHooks } from '../src/api/http'

const err = (code: string, message = 'server says no', status = 400, trace_id = 'trace-123') =>
  new ApiError(status, { code, message, trace_id })

describe('API error mapping', () => {
  const required: Record<string, RegExp> = {
    UNAUTHORIZED: /登录/,
    FORBIDDEN: /权限/,
    NOT_FOUND: /不存在/,
    VALIDATION_FAILED: /校验/,
    MALFORMED_JSON: /格式/,
    RATE_LIMITED: /频繁/,
    TOKEN_EXPIRED: /过期/,
    INVALID_CREDENTIALS: /用户名或密码错误/,
    REFUND_EXCEEDS_PAID: /超过/,
    ORDER_NOT_REFUNDABLE: /不可退款/,
    POINTS_INSUFFICIENT: /积分不足/,
    DATABASE_UNAVAILABLE: /数据库/,
    INTERNAL: /服务器内部错误/,
  }

  it.each(Object.entries(required))('%s has a Chinese message', (code, pattern) => {
    expect(ERROR_MESSAGES[code]).toMatch(pattern)
    expect(errorMessage(err(code))).toMatch(pattern)
    // the English server text is not what an operator reads for a known code
    if (code !== 'VALIDATION_FAILED' && code !== 'MALFORMED_JSON') {
      expect(errorMessage(err(code))).not.toContain('server says no')
    }
  })

  it('every message in the table is Chinese', () => {
    for (const [code, text] of Object.entries(ERROR_MESSAGES)) {
      expect(text, code).toMatch(/[\u4e00-\u9fff]/)
    }
  })

  it('adds the server detail to validation errors', () => {
    expect(errorMessage(err('VALIDATION_FAILED', 'expiry_days: must be 1..3650'))).toBe(
      '提交的数据未通过校验：expiry_days: must be 1..3650',
    )
  })

  it('shows the trace id for server failures', () => {
    expect(errorMessage(err('INTERNAL', 'boom', 500, 'abc'))).toBe('服务器内部错误，请稍后重试（追踪号：abc）')
    expect(errorMessage(err('DATABASE_UNAVAILABLE', 'busy', 503, 'db1'))).toContain('db1')
  })

  it('falls back to the server message and trace id for an unknown code', () => {
    const d = describeError(err('MERCHANT_ALREADY_REVIEWED', 'merchant was reviewed already', 409, 't-9'))
    expect(d.message).toBe('merchant was reviewed already（追踪号：t-9）')
    expect(d.traceId).toBe('t-9')
    expect(errorMessage(new ApiError(418, { code: 'TEAPOT', message: '' }))).toBe('请求失败（HTTP 418）')
  })

  it('describes errors that are not from the API', () => {
    expect(errorMessage(new Error('x'))).toBe('操作失败：x')
    expect(errorMessage('??')).toBe('操作失败，请稍后重试')
  })
})

describe('HTTP layer', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    setSessionHooks({ accessToken: () => null, refresh: async () => false, expired: () => {} })
  })

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })

  it('sends the bearer token and parses the error shape', async () => {
    const fetchMock = vi.fn().mockResolvedValue(json(409, { code: 'REFUND_EXCEEDS_PAID', message: 'too much', trace_id: 't1' }))
    vi.stubGlobal('fetch', fetchMock)
    setSessionHooks({ accessToken: () => 'tok', refresh: async () => false, expired: () => {} })
    const e = (await request('POST', '/api/admin/orders/X/refund', { body: { amount_fen: 1, reason: 'r' } }).catch((x: unknown) => x)) as ApiError
    expect(e).toBeInstanceOf(ApiError)
    expect(e.code).toBe('REFUND_EXCEEDS_PAID')
    expect(e.traceId).toBe('t1')
    expect(errorMessage(e)).toBe('退款金额超过订单可退金额')
    const [, init] = fetchMock.mock.calls[0]!
    expect(init.headers.Authorization).toBe('Bearer tok')
    expect(JSON.parse(init.body)).toEqual({ amount_fen: 1, reason: 'r' })
  })

  it('ends the session on 401', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(json(401, { code: 'UNAUTHORIZED', message: 'no', trace_id: 't' })))
    const expired = vi.fn()
    setSessionHooks({ accessToken: () => 'tok', refresh: async () => true, expired })
    await expect(request('GET', '/api/admin/users')).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
    expect(expired).toHaveBeenCalledOnce()
  })

  it('renews an expired token once and retries', async () => {
    const fetchMock = vi
      .fn()
      .mockResolvedValueOnce(json(401, { code: 'TOKEN_EXPIRED', message: 'expired', trace_id: 't' }))
      .mockResolvedValueOnce(json(200, { items: [], next_cursor: null }))
    vi.stubGlobal('fetch', fetchMock)
    let token = 'old'
    const expired = vi.fn()
    setSessionHooks({
      accessToken: () => token,
      refresh: async () => {
        token = 'new'
        return true
      },
      expired,
    })
    await expect(request('GET', '/api/admin/users')).resolves.toEqual({ items: [], next_cursor: null })
    expect(fetchMock.mock.calls[1]![1].headers.Authorization).toBe('Bearer new')
    expect(expired).not.toHaveBeenCalled()
  })

  it('goes to login when the token cannot be renewed', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(json(401, { code: 'TOKEN_EXPIRED', message: 'expired', trace_id: 't' })))
    const expired = vi.fn()
    setSessionHooks({ accessToken: () => 'tok', refresh: async () => false, expired })
    const e = await request('GET', '/api/admin/users').catch((x) => x)
    expect(errorMessage(e)).toBe('登录已过期，请重新登录')
    expect(expired).toHaveBeenCalledOnce()
  })

  it('does not end the session when the login itself is refused', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(json(401, { code: 'INVALID_CREDENTIALS', message: 'bad', trace_id: 't' })))
    const expired = vi.fn()
    setSessionHooks({ accessToken: () => null, refresh: async () => false, expired })
    const e = await request('POST', '/api/admin/login', { body: {}, anonymous: true }).catch((x) => x)
    expect(errorMessage(e)).toBe('用户名或密码错误')
    expect(expired).not.toHaveBeenCalled()
  })

  it('maps a non-JSON error page and a network failure', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'X-Request-Id': 'rid-1' } })))
    const e = await request('GET', '/api/admin/users').catch((x) => x)
    expect(errorMessage(e)).toBe('服务器返回了无法识别的响应（追踪号：rid-1）')

    vi.stubGlobal('fetch', vi.fn().mockRejectedValue(new TypeError('Failed to fetch')))
    const n = await request('GET', '/api/admin/users').catch((x) => x)
    expect(errorMessage(n)).toBe('无法连接服务器，请检查网络后重试')
  })

  it('leaves out empty query parameters', async () => {
    const fetchMock = vi.fn().mockResolvedValue(json(200, { items: [], next_cursor: null }))
    vi.stubGlobal('fetch', fetchMock)
    await request('GET', '/api/admin/orders', { query: { status: '', merchant_id: undefined, from: '2026-11-01', cursor: null, limit: 20 } })
    expect(fetchMock.mock.calls[0]![0]).toBe('/api/admin/orders?from=2026-11-01&limit=20')
  })
})
