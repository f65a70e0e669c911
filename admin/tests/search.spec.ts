import { describe, expect, it } from 'vitest'
import { userSearchTerm } from '../src/utils/search'

describe('user search term', () => {
  it('reduces a phone number to the 11 digits the blind index knows', () => {
    expect(userSearchTerm('13800138000')).toBe('13800138000')
    expect(userSearchTerm(' 138 0013-8000 ')).toBe('13800138000')
    expect(userSearchTerm('+86 138 0013 8000')).toBe('13800138000')
    expect(userSearchTerm('8613800138000')).toBe('13800138000')
  })

  it('sends anything else as typed, and nothing when empty', () => {
    expect(userSearchTerm('小明')).toBe('小明')
    expect(userSearchTerm('0193a5b2-7c1e-7000-8000-000000000001')).toBe('0193a5b2-7c1e-7000-8000-000000000001')
    expect(userSearchTerm('12345')).toBe('12345')
    expect(userSearchTerm('   ')).toBeUndefined()
  })
})
