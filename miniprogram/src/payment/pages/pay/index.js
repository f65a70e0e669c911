// Creates the order, opens WeChat Pay, then waits for the server to see the payment.
// One Idempotency-Key per visit of this page: every retry (automatic or the 重试 button) sends
// the same key, so the server answers with the same order instead of making a second one.
const { services, errorText, confirm, toast } = require('../../../utils/page');
const { uuid4 } = require('../../../utils/ids');
const { fenToYuan } = require('../../../utils/format');
const payflow = require('../../../services/payflow');

Component({
  data: {
    code: '',
    amountFen: 0,
    amountText: '',
    merchantName: '',
    // creating | paying | confirming | cancelled | failed | pending
    step: 'creating',
    error: '',
    orderNo: '',
  },
  methods: {
    onLoad(query) {
      const amountFen = Number(query.amount) || 0;
      this.idempotencyKey = uuid4();
      this.payParams = null;
      this.setData({
        code: query.code || '',
        amountFen,
        amountText: fenToYuan(amountFen),
        merchantName: query.name ? decodeURIComponent(query.name) : '',
      });
      this.start();
    },
    async start() {
      const { api } = services();
      this.setData({ step: 'creating', error: '' });
      try {
        if (!this.payParams) {
          const order = await payflow.createOrder(api, {
            paymentCodeId: this.data.code,
            amountFen: this.data.amountFen,
            idempotencyKey: this.idempotencyKey,
          });
          this.payParams = order.pay_params;
          this.setData({ orderNo: order.order_no });
          if (order.status === 'paid') return this.confirmPaid();
        }
        await this.pay();
      } catch (e) {
        this.setData({ step: 'failed', error: errorText(e) });
      }
      return undefined;
    },
    async pay() {
      this.setData({ step: 'paying', error: '' });
      try {
        await payflow.requestPayment(wx, this.payParams);
      } catch (e) {
        if (e.code === 'PAYMENT_CANCELLED') {
          this.setData({ step: 'cancelled', error: '' });
          return;
        }
        this.setData({ step: 'failed', error: errorText(e) });
        return;
      }
      await this.confirmPaid();
    },
    async confirmPaid() {
      this.setData({ step: 'confirming' });
      try {
        const order = await payflow.pollOrder(services().api, this.data.orderNo, this.pollOptions || {});
        wx.redirectTo({ url: `/payment/pages/result/index?order_no=${order.order_no || this.data.orderNo}` });
      } catch (e) {
        this.setData({ step: e.code === 'PAYMENT_PENDING' ? 'pending' : 'failed', error: errorText(e) });
      }
    },
    onRetry() {
      return this.start();
    },
    onPayAgain() {
      return this.pay();
    },
    onCheckAgain() {
      return this.confirmPaid();
    },
    async onCancelOrder() {
      if (!(await confirm('取消订单', '确定不再付款并关闭此订单吗？'))) return;
      if (this.data.orderNo) {
        try {
          await services().api.payments.cancel(this.data.orderNo);
        } catch (e) {
          if (e.code !== 'ORDER_NOT_PAYABLE' && e.code !== 'NOT_FOUND') {
            toast(errorText(e));
            return;
          }
        }
      }
      toast('订单已取消');
      wx.navigateBack({ delta: 1 });
    },
  },
});
