const { fenToYuan } = require('../../../utils/format');

Component({
  data: { code: '', amountFen: 0, amountText: '', merchantName: '', fixed: false },
  methods: {
    onLoad(query) {
      const amountFen = Number(query.amount) || 0;
      this.setData({
        code: query.code || '',
        amountFen,
        amountText: fenToYuan(amountFen),
        merchantName: query.name ? decodeURIComponent(query.name) : '',
        fixed: query.fixed === '1',
      });
    },
    onConfirm() {
      const { code, amountFen, merchantName } = this.data;
      if (!code || !amountFen) return;
      wx.redirectTo({
        url: `/payment/pages/pay/index?code=${code}&amount=${amountFen}&name=${encodeURIComponent(merchantName)}`,
      });
    },
    onCancel() {
      wx.navigateBack({ delta: 1 });
    },
  },
});
