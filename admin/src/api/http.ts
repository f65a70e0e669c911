import { ApiError, BAD_RESPONSE, NETWORK_ERROR, type ApiErrorBody } from './errors'

/** What the HTTP layer needs from the session, wired up in main.ts (keeps this module free of Vue). */
export interface SessionHooks {
  accessToken(): string | null
  /** Tries to renew the tokens once; resolves false when the session cannot be renewed. */
  refresh(): Promise<boolean>
  /** Called once a request with a token was refused with 401: the session is over. */
  expired(): void
}

let hooks: SessionHooks = {
  accessToken: () => null,
  refresh: async () => false,
  expired: () => {},
}

export function setSessionHooks(h: SessionHooks): void {
  hooks = h
}

export type Query = Record<string, string | number | null | undefined>

export interface RequestOptions {
  query?: Query
  body?: unknown
  /** Login and refresh are sent without a bearer token and must not end the session on 401. */
  anonymous?: boolean
  signal?: AbortSignal
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v))
  }
  const qs = params.toString()
  return qs ? `${path}?${qs}` : path
}

async function send(method: string, path: string, opts: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  const token = opts.anonymous ? null : hooks.accessToken()
  if (token) headers.Authorization = `Bearer ${token}`
  let body: string | undefined
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  try {
    return await fetch(buildUrl(path, opts.query), { method, headers, body, signal: opts.signal })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError(0, { code: NETWORK_ERROR, message: String(e) })
  }
}

async function errorFrom(res: Response): Promise<ApiError> {
  const fallback: ApiErrorBody = {
    code: res.status === 401 ? 'UNAUTHORIZED' : BAD_RESPONSE,
    message: `HTTP ${res.status}`,
    trace_id: res.headers.get('X-Request-Id') ?? undefined,
  }
  try {
    const data: unknown = await res.json()
    if (data && typeof data === 'object' && typeof (data as ApiErrorBody).code === 'string') {
      const b = data as ApiErrorBody
      return new ApiError(res.status, {
        code: b.code,
        message: typeof b.message === 'string' ? b.message : '',
        trace_id: b.trace_id ?? fallback.trace_id,
      })
    }
  } catch {
    // not JSON (a proxy error page, for instance): fall through to the generic error
  }
  return new ApiError(res.status, fallback)
}

/** Sends a request, renewing an expired token once; a 401 after that ends the session. */
export async function fetchApi(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  let res = await send(method, path, opts)
  if (res.status === 401 && !opts.anonymous) {
    let err = await errorFrom(res)
    if (err.code === 'TOKEN_EXPIRED' && (await hooks.refresh())) {
      res = await send(method, path, opts)
      if (res.status !== 401) return res
      err = await errorFrom(res)
    }
    hooks.expired()
    throw err
  }
  return res
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await fetchApi(method, path, opts)
  if (!res.ok) throw await errorFrom(res)
  if (res.status === 204) return undefined as T
  const text = await res.text()
  if (!text) return undefined as T
  try {
    return JSON.parse(text) as T
  } catch {
    throw new ApiError(res.status, {
      code: BAD_RESPONSE,
      message: 'response is not JSON',
      trace_id: res.headers.get('X-Request-Id') ?? undefined,
    })
  }
}

export const http = {
  get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', path, { query, signal }),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, { body }),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, { body }),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, { body }),
}
