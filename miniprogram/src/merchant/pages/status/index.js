const { services, errorText } = require('../../../utils/page');
const { merchantStatusText, formatTime } = require('../../../utils/format');
const { roleText, can } = require('../../utils/roles');

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
              // An answer without a role is from before staff: the caller owns it.
              role: m.role || 'owner',
              roleText: roleText(m.role || 'owner'),
              isOwner: (m.role || 'owner') === 'owner',
              tools: {
                codes: can(m.role || 'owner', 'codes'),
                takings: can(m.role || 'owner', 'takings'),
                settlement: can(m.role || 'owner', 'settlement'),
                orders: can(m.role || 'owner', 'orders'),
                staff: can(m.role || 'owner', 'staff'),
                today: can(m.role || 'owner', 'today'),
              },
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
    onJoin() {
      wx.navigateTo({ url: '/merchant/pages/join/index' });
    },
    onOpen(e) {
      const { page, id, name, role } = e.currentTarget.dataset;
      const roleQuery = role ? `&role=${role}` : '';
      wx.navigateTo({ url: `/merchant/pages/${page}/index?id=${id}&name=${encodeURIComponent(name || '')}${roleQuery}` });
    },
  },
});
