const { services, errorText } = require('../../../utils/page');
const { formatTime } = require('../../../utils/format');

Component({
  data: { loading: true, error: '', balance: null, expiringTotal: 0, nextExpiry: '' },
  methods: {
    onLoad() {
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { api, store } = services();
        const balance = await api.points.balance();
        store.getState().setBalance(balance);
        const lots = balance.expiring_soon || [];
        this.setData({
          balance,
          expiringTotal: lots.reduce((s, l) => s + (l.points || 0), 0),
          nextExpiry: lots.length ? formatTime(lots[0].expires_at, 'YYYY-MM-DD') : '',
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    onOpen(e) {
      wx.navigateTo({ url: e.currentTarget.dataset.url });
    },
  },
});
