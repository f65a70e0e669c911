// Full or partial refund of one order. Never retried automatically (no Idempotency-Key in the
// contract for refunds), and confirmed by the merchant before it is sent.
const { services, errorText, toast, confirm } = require('../../../utils/page');
const { fenToYuan, yuanToFen, cleanAmountInput } = require('../../../utils/format');

Component({
  data: { merchantId: '', orderNo: '', amountFen: 0, refundedFen: 0, refundableFen: 0, refundableText: '', amountText: '', reason: '', error: '', submitting: false },
  methods: {
    onLoad(query) {
      const amountFen = Number(query.amount) || 0;
      const refundedFen = Number(query.refunded) || 0;
      const refundableFen = Math.max(0, amountFen - refundedFen);
      this.setData({
        merchantId: query.id || '',
        orderNo: query.order_no || '',
        amountFen,
        refundedFen,
        refundableFen,
        refundableText: fenToYuan(refundableFen),
        amountText: fenToYuan(refundableFen),
      });
    },
    onAmount(e) {
      this.setData({ amountText: cleanAmountInput(e.detail && e.detail.value !== undefined ? e.detail.value : e.detail), error: '' });
    },
    onReason(e) {
      this.setData({ reason: e.detail && e.detail.value !== undefined ? e.detail.value : e.detail, error: '' });
    },
    async onSubmit() {
      if (this.data.submitting) return;
      const fen = yuanToFen(this.data.amountText);
      if (!fen) {
        this.setData({ error: '请输入退款金额' });
        return;
      }
      if (fen > this.data.refundableFen) {
        this.setData({ error: `最多可退 ¥${this.data.refundableText}` });
        return;
      }
      const reason = String(this.data.reason || '').trim();
      if (!reason) {
        this.setData({ error: '请填写退款原因' });
        return;
      }
      if (!(await confirm('确认退款', `将退款 ¥${fenToYuan(fen)} 给顾客，顾客获得的相应积分会被扣回。`))) return;
      this.setData({ submitting: true, error: '' });
      try {
        await services().api.merchants.refund(this.data.merchantId, this.data.orderNo, { amount_fen: fen, reason });
        toast('退款已提交', 'success');
        wx.navigateBack({ delta: 1 });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ submitting: false });
      }
    },
  },
});
