import { describe, expect, it } from 'vitest'
import { fenToYuan, formatFen, parseInteger, parseYuanToFen } from '../src/utils/money'

describe('fen to yuan', () => {
  it('formats with integer math and grouping', () => {
    expect(fenToYuan(0)).toBe('0.00')
    expect(fenToYuan(5)).toBe('0.05')
    expect(fenToYuan(30)).toBe('0.30')
    expect(fenToYuan(123456)).toBe('1,234.56')
    expect(fenToYuan(100000000)).toBe('1,000,000.00')
    expect(fenToYuan(-1999)).toBe('-19.99')
    expect(fenToYuan(123456, false)).toBe('1234.56')
  })

  it('stays exact where floating point would not', () => {
    // 0.1 + 0.2 yuan, and a large amount near the top of the safe integer range
    expect(fenToYuan(10 + 20)).toBe('0.30')
    expect(fenToYuan(9_007_199_254_740_991)).toBe('90,071,992,547,409.91')
  })

  it('shows the currency sign and a dash for missing values', () => {
    expect(formatFen(199)).toBe('¥1.99')
    expect(formatFen(-199)).toBe('-¥1.99')
    expect(formatFen(null)).toBe('—')
  })
})

describe('parse yuan to fen', () => {
  it('accepts up to two decimals', () => {
    expect(parseYuanToFen('12')).toBe(1200)
    expect(parseYuanToFen('12.3')).toBe(1230)
    expect(parseYuanToFen('19.99')).toBe(1999) // 19.99 * 100 is 1998.9999999999998 in floats
    expect(parseYuanToFen(' 1,234.50 ')).toBe(123450)
    expect(parseYuanToFen('0.01')).toBe(1)
    expect(parseYuanToFen('5.')).toBe(500)
  })

  it('rejects anything else', () => {
    for (const bad of ['', '-1', '1.234', '1e3', 'abc', '.5', '1.2.3', 'NaN']) {
      expect(parseYuanToFen(bad), bad).toBeNull()
    }
  })
})

describe('parse integer', () => {
  it('accepts signed integers only', () => {
    expect(parseInteger('42')).toBe(42)
    expect(parseInteger('-7')).toBe(-7)
    expect(parseInteger(' 3 ')).toBe(3)
    for (const bad of ['', '1.5', '1e3', 'x', '9007199254740993']) {
      expect(parseInteger(bad), bad).toBeNull()
    }
  })
})
