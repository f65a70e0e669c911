const { services, errorText } = require('../../../utils/page');
const { merchantStatusText, formatTime } = require('../../../utils/format');

const TAG = { pending: 'warning', approved: 'success', active: 'success', rejected: 'danger', disabled: 'default' };

Component({
  data: { loading: true, error: '', merchants: [] },
  methods: {
    onShow() {
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { api, store } = services();
        const list = await api.merchants.mine();
        store.getState().setMerchants(list);
        this.setData({
          merchants: list.map((m) =>
            Object.assign({}, m, {
              statusText: merchantStatusText(m.status),
              tagType: TAG[m.status] || 'default',
              canCollect: m.status === 'approved' || m.status === 'active',
              created: formatTime(m.created_at, 'YYYY-MM-DD'),
            }),
          ),
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    onRegister() {
      wx.navigateTo({ url: '/merchant/pages/register/index' });
    },
    onOpen(e) {
      const { page, id, name } = e.currentTarget.dataset;
      wx.navigateTo({ url: `/merchant/pages/${page}/index?id=${id}&name=${encodeURIComponent(name || '')}` });
    },
  },
});
