const { services, errorText } = require('../../../utils/page');
const { fenToYuan, formatTime, orderStatusText } = require('../../../utils/format');
const payflow = require('../../../services/payflow');

Component({
  data: { orderNo: '', loading: true, error: '', order: null, paid: false, amountText: '', statusText: '', paidAt: '', points: 0 },
  methods: {
    onLoad(query) {
      this.setData({ orderNo: query.order_no || '' });
      this.load();
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { api } = services();
        let order = await api.payments.get(this.data.orderNo);
        if (order.status === 'paid' && !order.points_awarded) {
          // Points are awarded just after the payment is recorded; give them a moment.
          order = await payflow.pollOrder(api, this.data.orderNo, Object.assign({ timeoutMs: 0 }, this.pollOptions || {}));
        }
        this.setData({
          order,
          paid: payflow.FINAL[order.status] && order.status !== 'closed',
          amountText: fenToYuan(order.amount_fen),
          statusText: orderStatusText(order.status),
          paidAt: formatTime(order.paid_at),
          points: order.points_awarded || 0,
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    onPoints() {
      wx.redirectTo({ url: '/points/pages/balance/index' });
    },
    onHome() {
      wx.reLaunch({ url: '/pages/home/index' });
    },
  },
});
