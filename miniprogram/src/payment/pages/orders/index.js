const { services } = require('../../../utils/page');
const pagedList = require('../../../behaviors/paged-list');

Component({
  behaviors: [pagedList],
  methods: {
    onLoad() {
      this.loadPage(true);
    },
    fetchPage(p) {
      return services().api.payments.list(p);
    },
    onSelect(e) {
      const order = e.detail.order;
      wx.navigateTo({ url: `/payment/pages/result/index?order_no=${order.order_no}` });
    },
  },
});
