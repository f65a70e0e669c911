import { describe, expect, it } from 'vitest'
import { differences, discrepancyKind, runStatus, runTrigger } from '../src/utils/reconciliation'
import { saveBlob } from '../src/utils/download'

describe('reconciliation labels', () => {
  it('counts every kind of difference, repaired or not', () => {
    expect(differences({ missing_here: 5, missing_at_wechat: 1, amount_mismatches: 2, status_mismatches: 0 })).toBe(8)
    expect(differences({ missing_here: 0, missing_at_wechat: 0, amount_mismatches: 0, status_mismatches: 0 })).toBe(0)
  })

  it('names each kind and says which are repaired automatically', () => {
    expect(discrepancyKind('missing_here')).toMatchObject({ text: '本地未支付', type: 'warning' })
    expect(discrepancyKind('missing_here').hint).toContain('自动查单补记')
    expect(discrepancyKind('amount_mismatch').hint).toContain('不自动修复')
    expect(discrepancyKind('something_new')).toEqual({ text: 'something_new', type: 'info', hint: '' })
    expect(runStatus('failed')).toEqual({ text: '失败', type: 'danger' })
    expect(runTrigger('schedule')).toBe('每日任务')
    expect(runTrigger('admin')).toBe('管理员')
    expect(runTrigger('other')).toBe('other')
  })
})

describe('saveBlob', () => {
  it('hands the file to the browser under its name', () => {
    const clicked: string[] = []
    const original = HTMLAnchorElement.prototype.click
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicked.push(this.download)
    }
    URL.createObjectURL = () => 'blob:x'
    URL.revokeObjectURL = () => {}
    try {
      saveBlob(new Blob(['a,b']), 'settlements-2026-12-07.csv')
    } finally {
      HTMLAnchorElement.prototype.click = original
    }
    expect(clicked).toEqual(['settlements-2026-12-07.csv'])
    expect(document.querySelector('a[download]')).toBeNull()
  })
})
