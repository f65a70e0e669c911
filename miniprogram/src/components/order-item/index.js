const { fenToYuan, formatTime, orderStatusText } = require('../../utils/format');

const TAG_TYPE = {
  created: 'warning',
  paying: 'warning',
  paid: 'success',
  refunding: 'primary',
  partially_refunded: 'primary',
  refunded: 'default',
  closed: 'default',
};

// One order row, for the shopper's orders and the merchant's orders.
Component({
  properties: {
    order: { type: Object, value: {} },
    showMerchant: { type: Boolean, value: true },
  },
  data: { amount: '0.00', refunded: '', time: '', statusText: '', tagType: 'default' },
  observers: {
    order(o) {
      if (!o) return;
      this.setData({
        amount: fenToYuan(o.amount_fen),
        refunded: o.refunded_fen ? fenToYuan(o.refunded_fen) : '',
        time: formatTime(o.paid_at || o.created_at),
        statusText: orderStatusText(o.status),
        tagType: TAG_TYPE[o.status] || 'default',
      });
    },
  },
  methods: {
    onTap() {
      this.triggerEvent('select', { order: this.data.order });
    },
  },
});
