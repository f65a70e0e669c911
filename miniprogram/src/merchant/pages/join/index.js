const { services, errorText } = require('../../../utils/page');
const { formatCode, codeComplete, roleText } = require('../../utils/roles');

Component({
  data: { code: '', submitting: false, error: '', joined: null },
  methods: {
    onInput(e) {
      const value = e.detail && e.detail.value !== undefined ? e.detail.value : e.detail;
      this.setData({ code: formatCode(value), error: '' });
    },
    async onSubmit() {
      if (this.data.submitting) return;
      if (!codeComplete(this.data.code)) {
        this.setData({ error: '请输入 12 位邀请码，如 K7QM-3XD9-PW2H' });
        return;
      }
      this.setData({ submitting: true, error: '' });
      try {
        const joined = await services().api.staff.redeem(this.data.code);
        this.setData({ joined: Object.assign({}, joined, { roleText: roleText(joined.role) }) });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ submitting: false });
      }
    },
    onDone() {
      wx.redirectTo({ url: '/merchant/pages/status/index' });
    },
  },
});
