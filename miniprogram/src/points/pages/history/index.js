const { services } = require('../../../utils/page');
const { formatTime, pointsKindText } = require('../../../utils/format');
const pagedList = require('../../../behaviors/paged-list');

Component({
  behaviors: [pagedList],
  methods: {
    onLoad() {
      this.loadPage(true);
    },
    fetchPage(p) {
      return services().api.points.history(p);
    },
    mapItem(r) {
      return Object.assign({}, r, {
        changeText: r.change > 0 ? `+${r.change}` : String(r.change),
        positive: r.change > 0,
        kindText: pointsKindText(r.kind),
        time: formatTime(r.created_at),
        expires: r.kind === 'award' && r.expires_at ? formatTime(r.expires_at, 'YYYY-MM-DD') : '',
      });
    },
  },
});
