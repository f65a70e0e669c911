import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { adminApi, type LoginResponse } from '../api/admin'

// Kept in sessionStorage: an admin session ends with the browser tab, and is never shared
// with other tabs or left behind on a shared machine.
const KEY = 'points-admin.session'

interface Stored {
  accessToken: string
  refreshToken: string
  expiresAt: number
  username: string
}

function load(): Stored | null {
  try {
    const raw = sessionStorage.getItem(KEY)
    return raw ? (JSON.parse(raw) as Stored) : null
  } catch {
    return null
  }
}

export const useSessionStore = defineStore('session', () => {
  const stored = load()
  const accessToken = ref<string | null>(stored?.accessToken ?? null)
  const refreshToken = ref<string | null>(stored?.refreshToken ?? null)
  const expiresAt = ref<number>(stored?.expiresAt ?? 0)
  const username = ref<string>(stored?.username ?? '')
  /** Set when the session ended underneath the operator, so the login page can say why. */
  const expiredNotice = ref(false)

  const loggedIn = computed(() => accessToken.value !== null)

  function save(tokens: LoginResponse, name: string) {
    accessToken.value = tokens.access_token
    refreshToken.value = tokens.refresh_token
    expiresAt.value = Date.now() + tokens.expires_in * 1000
    username.value = name
    expiredNotice.value = false
    const data: Stored = {
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      expiresAt: expiresAt.value,
      username: name,
    }
    sessionStorage.setItem(KEY, JSON.stringify(data))
  }

  async function login(name: string, password: string) {
    save(await adminApi.login(name, password), name)
  }

  let refreshing: Promise<boolean> | null = null
  /** One refresh at a time: parallel requests that all saw TOKEN_EXPIRED share it. */
  function refresh(): Promise<boolean> {
    const token = refreshToken.value
    if (!token) return Promise.resolve(false)
    refreshing ??= adminApi
      .refresh(token)
      .then((tokens) => {
        save(tokens, username.value)
        return true
      })
      .catch(() => false)
      .finally(() => {
        refreshing = null
      })
    return refreshing
  }

  function clear() {
    accessToken.value = null
    refreshToken.value = null
    expiresAt.value = 0
    sessionStorage.removeItem(KEY)
  }

  /** Ends the session on the server as well; the local session goes whatever it answers. */
  async function logout() {
    if (accessToken.value !== null) {
      await adminApi.logout().catch(() => undefined)
    }
    clear()
    expiredNotice.value = false
  }

  function expire() {
    if (accessToken.value === null) return
    clear()
    expiredNotice.value = true
  }

  return { accessToken, refreshToken, expiresAt, username, expiredNotice, loggedIn, login, refresh, logout, expire }
})
