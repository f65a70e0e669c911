// Helpers that play the other parties of the end-to-end story through the public API:
// a merchant owner and a shopper (signed mini-program calls) and the WeChat sandbox.
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto'

export const BASE_URL = (process.env.E2E_BASE_URL ?? '').replace(/\/$/, '')
/** The embedded sandbox listens on the server's port + 1 unless told otherwise (APP_SANDBOX_PORT). */
export const SANDBOX_URL = (process.env.E2E_SANDBOX_URL ?? defaultSandbox(BASE_URL)).replace(/\/$/, '')

function defaultSandbox(base: string): string {
  if (!base) return ''
  const u = new URL(base)
  u.port = String(Number(u.port || (u.protocol === 'https:' ? 443 : 80)) + 1)
  return u.origin
}
export const ADMIN_USERNAME = process.env.E2E_ADMIN_USERNAME ?? 'admin'
export const ADMIN_PASSWORD = process.env.E2E_ADMIN_PASSWORD ?? ''

export interface MiniUser {
  accessToken: string
  signKey: string
  user: { id: string; [k: string]: unknown }
}

async function json<T>(res: Response, what: string): Promise<T> {
  const text = await res.text()
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/** Logs in through the sandbox's jscode2session: `test-<name>` is a stable openid. */
export async function miniLogin(name: string): Promise<MiniUser> {
  const res = await fetch(`${BASE_URL}/api/auth/wechat-login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code: `test-${name}` }),
  })
  const b = await json<{ access_token: string; sign_key: string; user: MiniUser['user'] }>(res, 'wechat-login')
  return { accessToken: b.access_token, signKey: b.sign_key, user: b.user }
}

/** A signed call as the mini-program makes it (API.md: X-Timestamp, X-Nonce, X-Signature). */
export async function signed<T>(who: MiniUser, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const text = body === undefined ? '' : JSON.stringify(body)
  const ts = String(Math.floor(Date.now() / 1000))
  const nonce = randomBytes(16).toString('hex')
  const bodyHash = createHash('sha256').update(text).digest('hex')
  const signature = createHmac('sha256', who.signKey).update(`${method}\n${path}\n${ts}\n${nonce}\n${bodyHash}\n`).digest('hex')
  const res = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${who.accessToken}`,
      'X-Timestamp': ts,
      'X-Nonce': nonce,
      'X-Signature': signature,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : text,
  })
  return json<T>(res, `${method} ${path}`)
}

export async function get<T>(who: MiniUser, path: string): Promise<T> {
  const res = await fetch(`${BASE_URL}${path}`, { headers: { Authorization: `Bearer ${who.accessToken}` } })
  return json<T>(res, `GET ${path}`)
}

export async function registerMerchant(owner: MiniUser, merchantName: string): Promise<{ id: string }> {
  return signed(owner, 'POST', '/api/merchants', {
    merchant_name: merchantName,
    contact_name: '张三',
    contact_phone: '13800138000',
    business_license: `91310000${Date.now()}`.slice(0, 18),
    address: '上海市浦东新区测试路 1 号',
  })
}

export async function createPaymentCode(owner: MiniUser, merchantId: string): Promise<{ id: string }> {
  const code = await signed<{ id?: string; code_id?: string }>(owner, 'POST', `/api/merchants/${merchantId}/payment-codes`, { label: '前台' })
  return { id: (code.id ?? code.code_id) as string }
}

/** The shopper pays `amountFen` at the code; the sandbox completes the payment. */
export async function pay(shopper: MiniUser, codeId: string, amountFen: number): Promise<string> {
  const order = await signed<{ order_no: string }>(
    shopper,
    'POST',
    '/api/payments',
    { payment_code_id: codeId, amount_fen: amountFen },
    { 'Idempotency-Key': randomUUID() },
  )
  await sandbox('POST', `/sandbox/orders/${order.order_no}/pay`)
  return order.order_no
}

export async function sandbox(method: string, path: string): Promise<unknown> {
  const res = await fetch(`${SANDBOX_URL}${path}`, { method })
  return json(res, `sandbox ${method} ${path}`)
}

/** Polls until `check` returns a value (not undefined) or the time is up. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < until) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

/** An admin's bearer headers, signed in through the API (for checks beside the browser). */
export async function adminHeaders(): Promise<Record<string, string>> {
  const login = await fetch(`${BASE_URL}/api/admin/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: ADMIN_USERNAME, password: ADMIN_PASSWORD }),
  })
  const { access_token } = (await login.json()) as { access_token: string }
  return { Authorization: `Bearer ${access_token}`, 'Content-Type': 'application/json' }
}

export interface RiskRuleAnswer {
  id: string
  name: string
  condition: { type: string; max?: number; window_secs?: number }
  action: string
  priority: number
  enabled: boolean
}

export async function riskRule(name: string): Promise<RiskRuleAnswer> {
  const res = await fetch(`${BASE_URL}/api/admin/risk-rules`, { headers: await adminHeaders() })
  const { items } = (await res.json()) as { items: RiskRuleAnswer[] }
  const rule = items.find((r) => r.name === name)
  if (!rule) throw new Error(`no risk rule ${name}`)
  return rule
}
