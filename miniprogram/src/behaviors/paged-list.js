// Cursor paging for list pages: first page, pull-to-refresh, more on reaching the bottom.
// The page provides `fetchPage({cursor, limit})` returning {items, next_cursor}, and may
// provide `mapItem(item)` to add display fields.
const { describe } = require('../utils/errors');

module.exports = Behavior({
  data: {
    items: [],
    nextCursor: null,
    loading: false,
    refreshing: false,
    finished: false,
    error: '',
    pageSize: 20,
  },
  methods: {
    async loadPage(reset) {
      if (this._loadingPage) return;
      if (!reset && this.data.finished) return;
      this._loadingPage = true;
      this.setData({ loading: true, error: '' });
      try {
        const cursor = reset ? undefined : this.data.nextCursor || undefined;
        const res = await this.fetchPage({ cursor, limit: this.data.pageSize });
        const mapped = (res.items || []).map((it) => (this.mapItem ? this.mapItem(it) : it));
        this.setData({
          items: reset ? mapped : this.data.items.concat(mapped),
          nextCursor: res.next_cursor || null,
          finished: !res.next_cursor,
        });
      } catch (e) {
        this.setData({ error: describe(e) });
      } finally {
        this._loadingPage = false;
        this.setData({ loading: false });
      }
    },
    async refreshList() {
      this.setData({ refreshing: true });
      await this.loadPage(true);
      this.setData({ refreshing: false });
      if (typeof wx !== 'undefined' && wx.stopPullDownRefresh) wx.stopPullDownRefresh();
    },
    onPullDownRefresh() {
      return this.refreshList();
    },
    onReachBottom() {
      return this.loadPage(false);
    },
    onRetry() {
      return this.loadPage(this.data.items.length === 0);
    },
  },
});
