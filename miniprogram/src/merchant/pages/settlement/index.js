// Settlement by China Standard Time day from GET /api/merchants/{id}/settlements?from=&to=:
// what was paid, refunded, WeChat Pay's fee and the net, with the totals of the range. The fee
// is the trade bill's where a reconciliation recorded it, else the configured-rate estimate.
const { services, errorText } = require('../../../utils/page');
const { cstRange } = require('../../../utils/format');
const { feeRateText, settlementRow } = require('../../utils/settlement');

const RANGES = [
  { days: 7, text: '近 7 天' },
  { days: 30, text: '近 30 天' },
];

Component({
  data: { merchantId: '', merchantName: '', ranges: RANGES, days: 7, from: '', to: '', loading: true, error: '', dayRows: [], total: null, feeRate: '' },
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
        const s = await services().api.merchants.settlements(this.data.merchantId, { from, to });
        // Days with business only, newest first; the totals cover the whole range.
        const days = (s.items || []).filter((d) => d.order_count || d.refund_count);
        const sorted = days.slice().sort((a, b) => (a.date < b.date ? 1 : -1));
        this.setData({
          dayRows: sorted.map((d) => Object.assign({ date: d.date }, settlementRow(d))),
          total: settlementRow(s.totals || {}),
          feeRate: feeRateText(s.fee_rate_bp),
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
  },
});
