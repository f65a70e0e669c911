// Money travels as integer fen. Everything here is integer arithmetic on the digits, so no
// amount is ever shown as 0.30000000000000004 or rounded away.

/** 123456 -> "1,234.56"; -5 -> "-0.05". */
export function fenToYuan(fen: number, grouping = true): string {
  if (!Number.isSafeInteger(fen)) return '—'
  const negative = fen < 0
  const abs = Math.abs(fen)
  const whole = Math.trunc(abs / 100)
  const cents = abs % 100
  let wholeText = String(whole)
  if (grouping) wholeText = wholeText.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return `${negative ? '-' : ''}${wholeText}.${String(cents).padStart(2, '0')}`
}

/** 123456 -> "¥1,234.56". */
export function formatFen(fen: number | null | undefined): string {
  if (fen === null || fen === undefined) return '—'
  const text = fenToYuan(fen)
  return text.startsWith('-') ? `-¥${text.slice(1)}` : `¥${text}`
}

/**
 * Parses what an operator types as yuan ("12", "12.3", "12.34", "1,234.50") into fen.
 * Returns null for anything else: negatives, more than two decimals, exponents, junk.
 */
export function parseYuanToFen(input: string): number | null {
  const text = input.trim().replace(/,/g, '')
  const m = /^(\d+)(?:\.(\d{0,2}))?$/.exec(text)
  if (!m) return null
  const whole = m[1] ?? '0'
  const frac = (m[2] ?? '').padEnd(2, '0')
  const fen = Number(whole) * 100 + Number(frac)
  return Number.isSafeInteger(fen) ? fen : null
}

/** Strict integer parsing for counts and points: "12" and "-3" yes, "1.5", "1e3", "" no. */
export function parseInteger(input: string | number): number | null {
  const text = String(input).trim()
  if (!/^[-+]?\d+$/.test(text)) return null
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : null
}

/** Points with grouping: 1234567 -> "1,234,567". */
export function formatPoints(points: number | null | undefined): string {
  if (points === null || points === undefined) return '—'
  return points.toLocaleString('zh-CN')
}
