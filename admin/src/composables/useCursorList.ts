import { ref, shallowRef } from 'vue'
import type { Page } from '../api/admin'
import { errorMessage } from '../api/errors'

/**
 * A cursor-paged list (`{items, next_cursor}`): `reload()` starts over with the current
 * filters, `loadMore()` appends the next page. Loading and error states for the template.
 */
export function useCursorList<T>(fetchPage: (cursor: string | null) => Promise<Page<T>>) {
  const items = shallowRef<T[]>([])
  const nextCursor = ref<string | null>(null)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const loaded = ref(false)
  let generation = 0

  async function run(cursor: string | null, append: boolean) {
    const mine = ++generation
    loading.value = true
    error.value = null
    try {
      const page = await fetchPage(cursor)
      if (mine !== generation) return // a newer search replaced this one
      items.value = append ? [...items.value, ...page.items] : page.items
      nextCursor.value = page.next_cursor ?? null
      loaded.value = true
    } catch (e) {
      if (mine !== generation) return
      error.value = errorMessage(e)
      if (!append) items.value = []
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  return {
    items,
    nextCursor,
    loading,
    error,
    loaded,
    reload: () => run(null, false),
    loadMore: () => (nextCursor.value ? run(nextCursor.value, true) : Promise.resolve()),
  }
}
