/**
 * The user search term as the server needs it. Phones are stored encrypted and found through
 * a blind index of the exact number, so "138 0013-8000" and "+86 13800138000" are reduced to
 * "13800138000"; anything else (a nickname, a user id) is sent as typed.
 */
export function userSearchTerm(input: string): string | undefined {
  const text = input.trim()
  if (!text) return undefined
  if (/^[+\d\s-]+$/.test(text)) {
    const digits = text.replace(/\D/g, '').replace(/^86(?=1\d{10}$)/, '')
    if (/^1\d{10}$/.test(digits)) return digits
  }
  return text
}
