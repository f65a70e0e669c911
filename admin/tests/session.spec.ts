import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { useSessionStore } from '../src/stores/session'
import { createAppRouter } from '../src/router'

const KEY = 'points-admin.session'

describe('session', () => {
  beforeEach(() => {
    sessionStorage.clear()
    setActivePinia(createPinia())
    vi.unstubAllGlobals()
  })

  it('keeps the tokens of a login in sessionStorage', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn().mockResolvedValue(new Response(JSON.stringify({ access_token: 'a', refresh_token: 'r', expires_in: 900 }), { status: 200 })),
    )
    const s = useSessionStore()
    await s.login('admin', 'pw')
    expect(s.loggedIn).toBe(true)
    expect(JSON.parse(sessionStorage.getItem(KEY)!)).toMatchObject({ accessToken: 'a', refreshToken: 'r', username: 'admin' })
  })

  it('forgets everything when the session expires, and says why', () => {
    sessionStorage.setItem(KEY, JSON.stringify({ accessToken: 'a', refreshToken: 'r', expiresAt: 0, username: 'admin' }))
    const s = useSessionStore()
    expect(s.loggedIn).toBe(true)
    s.expire()
    expect(s.loggedIn).toBe(false)
    expect(s.expiredNotice).toBe(true)
    expect(sessionStorage.getItem(KEY)).toBeNull()
  })

  it('shares one refresh between parallel requests', async () => {
    sessionStorage.setItem(KEY, JSON.stringify({ accessToken: 'a', refreshToken: 'r', expiresAt: 0, username: 'admin' }))
    const fetchMock = vi
      .fn()
      .mockResolvedValue(new Response(JSON.stringify({ access_token: 'a2', refresh_token: 'r2', expires_in: 900 }), { status: 200 }))
    vi.stubGlobal('fetch', fetchMock)
    const s = useSessionStore()
    const results = await Promise.all([s.refresh(), s.refresh(), s.refresh()])
    expect(results).toEqual([true, true, true])
    expect(fetchMock).toHaveBeenCalledOnce()
    expect(JSON.parse(fetchMock.mock.calls[0]![1].body)).toEqual({ refresh_token: 'r' })
    expect(s.accessToken).toBe('a2')
  })

  it('sends a visitor without a session to the login page, remembering where they were going', async () => {
    const router = createAppRouter()
    await router.push('/orders')
    expect(router.currentRoute.value.name).toBe('login')
    expect(router.currentRoute.value.query.redirect).toBe('/orders')
  })
})
