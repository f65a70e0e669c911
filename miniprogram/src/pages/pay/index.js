// Where a printed payment code lands (pages/pay/index?code=<id>): shows whose code it is, then
// goes on to the amount (open amount) or straight to the confirmation (fixed amount).
const { services, errorText } = require('../../utils/page');
const { codeFromOptions } = require('../../utils/qr');
const { fenToYuan } = require('../../utils/format');

Component({
  data: { code: '', loading: true, error: '', merchantName: '', fixedAmount: '', amountFen: 0 },
  methods: {
    onLoad(query) {
      const code = codeFromOptions(query || {});
      if (!code) {
        this.setData({ loading: false, error: '收款码无效，请重新扫描商家的收款码' });
        return;
      }
      this.setData({ code });
      if (!services().session.get()) {
        this.askLogin();
        return;
      }
      this.load();
    },
    onShow() {
      // Back from the login page without logging in: say why nothing happens.
      if (this._askedLogin && !services().session.get()) {
        this.setData({ loading: false, error: '登录后才能付款' });
      }
    },
    askLogin() {
      this._askedLogin = true;
      this.setData({ loading: false });
      wx.navigateTo({ url: `/pages/login/index?redirect=${encodeURIComponent(`/pages/pay/index?code=${this.data.code}`)}` });
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const pc = await services().api.paymentCodes.get(this.data.code);
        const amountFen = pc.amount_fen || 0;
        this.setData({
          merchantName: pc.merchant_name || '',
          amountFen,
          fixedAmount: amountFen ? fenToYuan(amountFen) : '',
        });
        this.next();
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    next() {
      const { code, merchantName, amountFen } = this.data;
      const name = encodeURIComponent(merchantName);
      const url = amountFen
        ? `/payment/pages/confirm/index?code=${code}&amount=${amountFen}&name=${name}&fixed=1`
        : `/payment/pages/amount/index?code=${code}&name=${name}`;
      wx.redirectTo({ url });
    },
    onRetry() {
      if (!this.data.code) wx.redirectTo({ url: '/pages/scan/index' });
      else if (!services().session.get()) this.askLogin();
      else this.load();
    },
    onHome() {
      wx.reLaunch({ url: '/pages/home/index' });
    },
  },
});
