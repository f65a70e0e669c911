// Takings by China Standard Time day from GET /api/merchants/{id}/stats?from=&to=.
const { services, errorText } = require('../../../utils/page');
const { fenToYuan, cstRange } = require('../../../utils/format');
const { summarize } = require('../../utils/takings');

const RANGES = [
  { days: 7, text: '近 7 天' },
  { days: 30, text: '近 30 天' },
];

Component({
  data: { merchantId: '', merchantName: '', ranges: RANGES, days: 7, from: '', to: '', loading: true, error: '', dayRows: [], total: null },
  methods: {
    onLoad(query) {
      this.setData({ merchantId: query.id || '', merchantName: query.name ? decodeURIComponent(query.name) : '' });
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    onRange(e) {
      this.setData({ days: Number(e.currentTarget.dataset.days) });
      return this.load();
    },
    async load() {
      const { from, to } = cstRange(this.data.days);
      this.setData({ loading: true, error: '', from, to });
      try {
        const rows = await services().api.merchants.stats(this.data.merchantId, { from, to });
        const sorted = rows.slice().sort((a, b) => (a.date < b.date ? 1 : -1));
        this.setData({
          dayRows: sorted.map((r) => ({
            date: r.date,
            orders: r.order_count || 0,
            amountText: fenToYuan(r.amount_fen),
            refundText: r.refund_fen ? fenToYuan(r.refund_fen) : '',
            points: r.points_awarded || 0,
          })),
          total: summarize(rows),
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
  },
});
