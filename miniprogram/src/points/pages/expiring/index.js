// The lots that expire soon, from the balance answer (first to expire first).
const { services, errorText } = require('../../../utils/page');
const { formatTime } = require('../../../utils/format');

const DAY = 86400000;

Component({
  data: { loading: true, error: '', lots: [], total: 0 },
  methods: {
    onLoad() {
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const balance = await services().api.points.balance();
        const now = Date.now();
        const lots = (balance.expiring_soon || [])
          .slice()
          .sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at))
          .map((l) => ({
            points: l.points,
            date: formatTime(l.expires_at, 'YYYY-MM-DD'),
            daysLeft: Math.max(0, Math.ceil((Date.parse(l.expires_at) - now) / DAY)),
          }));
        this.setData({ lots, total: lots.reduce((s, l) => s + l.points, 0) });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
  },
});
