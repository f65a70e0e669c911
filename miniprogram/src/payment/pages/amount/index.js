const { cleanAmountInput, yuanToFen } = require('../../../utils/format');

const MAX_FEN = 5000000; // 50,000 yuan: a WeChat Pay single-payment ceiling for most merchants

Component({
  data: { code: '', merchantName: '', amountText: '', valid: false, hint: '' },
  methods: {
    onLoad(query) {
      this.setData({ code: query.code || '', merchantName: query.name ? decodeURIComponent(query.name) : '' });
    },
    onInput(e) {
      const amountText = cleanAmountInput(e.detail && e.detail.value !== undefined ? e.detail.value : e.detail);
      const fen = yuanToFen(amountText);
      let hint = '';
      if (amountText && !fen) hint = '请输入大于 0 的金额';
      else if (fen > MAX_FEN) hint = '单笔金额不能超过 50000 元';
      this.setData({ amountText, valid: Boolean(fen) && fen <= MAX_FEN, hint });
    },
    onNext() {
      const fen = yuanToFen(this.data.amountText);
      if (!this.data.valid || !fen) return;
      const name = encodeURIComponent(this.data.merchantName);
      wx.navigateTo({ url: `/payment/pages/confirm/index?code=${this.data.code}&amount=${fen}&name=${name}` });
    },
  },
});
