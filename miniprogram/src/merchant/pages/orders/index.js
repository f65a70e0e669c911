const { services } = require('../../../utils/page');
const pagedList = require('../../../behaviors/paged-list');

const REFUNDABLE = { paid: true, partially_refunded: true };

Component({
  behaviors: [pagedList],
  data: { merchantId: '' },
  methods: {
    onLoad(query) {
      this.setData({ merchantId: query.id || '' });
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
