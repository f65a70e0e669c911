// The business runs on China Standard Time: report days are CST days, times are shown in CST.

const CST_OFFSET_MS = 8 * 60 * 60 * 1000
const DAY_MS = 24 * 60 * 60 * 1000

/** The CST calendar date ("YYYY-MM-DD") of an instant. */
export function cstDate(at: Date = new Date()): string {
  return new Date(at.getTime() + CST_OFFSET_MS).toISOString().slice(0, 10)
}

/** The inclusive range of the last `days` CST days ending today. */
export function lastDays(days: number, now: Date = new Date()): [string, string] {
  const to = cstDate(now)
  const from = cstDate(new Date(now.getTime() - (days - 1) * DAY_MS))
  return [from, to]
}

const dateTimeFormat = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
})

/** An RFC 3339 instant shown in CST, "2026/11/27 15:04:05". */
export function formatDateTime(value: string | null | undefined): string {
  if (!value) return '—'
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return value
  return dateTimeFormat.format(d)
}
