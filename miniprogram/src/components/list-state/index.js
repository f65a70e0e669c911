// The footer of every list: loading, error with retry, empty, or "no more".
Component({
  properties: {
    loading: Boolean,
    finished: Boolean,
    error: String,
    count: Number,
    emptyText: { type: String, value: '暂无记录' },
  },
  methods: {
    onRetry() {
      this.triggerEvent('retry');
    },
  },
});
