const { services, errorText } = require('../../../utils/page');
const { normalize } = require('../../utils/stats');

Component({
  data: { loading: true, error: '', months: [], totals: null },
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
        this.setData(normalize(await services().api.points.statistics()));
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
  },
});
