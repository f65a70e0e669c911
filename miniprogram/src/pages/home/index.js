const { services, errorText } = require('../../utils/page');
const { bind } = require('../../utils/store');

Component({
  data: {
    loggedIn: false,
    user: null,
    available: null,
    expiringPoints: 0,
    loading: false,
    error: '',
  },
  methods: {
    onLoad() {
      const { store } = services();
      this._unbind = bind(this, store, (s) => ({ loggedIn: s.loggedIn, user: s.user }));
    },
    onShow() {
      if (this.data.loggedIn) this.loadBalance();
    },
    onUnload() {
      if (this._unbind) this._unbind();
    },
    onPullDownRefresh() {
      return this.loadBalance().then(() => wx.stopPullDownRefresh());
    },
    async loadBalance() {
      if (!this.data.loggedIn) return;
      this.setData({ loading: true, error: '' });
      try {
        const { api, store } = services();
        const balance = await api.points.balance();
        store.getState().setBalance(balance);
        const expiring = (balance.expiring_soon || []).reduce((sum, lot) => sum + (lot.points || 0), 0);
        this.setData({ available: balance.available, expiringPoints: expiring });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    onScan() {
      wx.navigateTo({ url: '/pages/scan/index' });
    },
    onLogin() {
      wx.navigateTo({ url: '/pages/login/index' });
    },
    onOpen(e) {
      const url = e.currentTarget.dataset.url;
      if (!this.data.loggedIn) {
        wx.navigateTo({ url: `/pages/login/index?redirect=${encodeURIComponent(url)}` });
        return;
      }
      wx.navigateTo({ url });
    },
  },
});
