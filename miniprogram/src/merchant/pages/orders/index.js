const { services } = require('../../../utils/page');
const pagedList = require('../../../behaviors/paged-list');
const { can } = require('../../utils/roles');

const REFUNDABLE = { paid: true, partially_refunded: true };

Component({
  behaviors: [pagedList],
  data: { merchantId: '', todayOnly: false, canRefund: true },
  methods: {
    onLoad(query) {
      // A cashier's list is today's payments only (the server restricts it whatever is
      // asked) and has no refunds.
      const role = query.role || 'owner';
      this.setData({ merchantId: query.id || '', todayOnly: role === 'cashier', canRefund: can(role, 'refund') });
      if (role === 'cashier') wx.setNavigationBarTitle({ title: '今日收款' });
      this.loadPage(true);
    },
    onShow() {
      // Back from a refund: the order's state changed.
      if (this._shownOnce) this.loadPage(true);
      this._shownOnce = true;
    },
    fetchPage(p) {
      return services().api.merchants.orders(this.data.merchantId, p);
    },
    onSelect(e) {
      if (!this.data.canRefund) return;
      const o = e.detail.order;
      if (!REFUNDABLE[o.status]) {
        wx.showToast({ title: '该订单当前不可退款', icon: 'none' });
        return;
      }
      wx.navigateTo({
        url: `/merchant/pages/refund/index?id=${this.data.merchantId}&order_no=${o.order_no}&amount=${o.amount_fen}&refunded=${o.refunded_fen || 0}`,
      });
    },
  },
});
