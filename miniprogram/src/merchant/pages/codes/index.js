// The merchant's payment codes: create one (optionally with a fixed amount), see its QR image
// (fetched with the bearer token, so it goes through downloadFile), save it to print.
const { services, errorText, toast } = require('../../../utils/page');
const { fenToYuan, yuanToFen, cleanAmountInput } = require('../../../utils/format');

Component({
  data: {
    merchantId: '',
    merchantName: '',
    loading: true,
    error: '',
    codes: [],
    label: '',
    amountText: '',
    formError: '',
    creating: false,
    qr: {}, // code id -> temp file path
  },
  methods: {
    onLoad(query) {
      this.setData({ merchantId: query.id || '', merchantName: query.name ? decodeURIComponent(query.name) : '' });
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const codes = await services().api.merchants.codes(this.data.merchantId);
        this.setData({
          codes: codes.map((c) => Object.assign({}, c, { amountText: c.amount_fen ? fenToYuan(c.amount_fen) : '' })),
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    onLabel(e) {
      this.setData({ label: e.detail && e.detail.value !== undefined ? e.detail.value : e.detail, formError: '' });
    },
    onAmount(e) {
      this.setData({ amountText: cleanAmountInput(e.detail && e.detail.value !== undefined ? e.detail.value : e.detail), formError: '' });
    },
    async onCreate() {
      if (this.data.creating) return;
      const label = String(this.data.label || '').trim();
      if (!label) {
        this.setData({ formError: '请填写收款码名称，如“1 号收银台”' });
        return;
      }
      let amountFen;
      if (this.data.amountText) {
        amountFen = yuanToFen(this.data.amountText);
        if (!amountFen) {
          this.setData({ formError: '固定金额需大于 0' });
          return;
        }
      }
      this.setData({ creating: true, formError: '' });
      try {
        await services().api.merchants.createCode(this.data.merchantId, { label, amount_fen: amountFen });
        this.setData({ label: '', amountText: '' });
        toast('收款码已生成');
        await this.load();
      } catch (e) {
        this.setData({ formError: errorText(e) });
      } finally {
        this.setData({ creating: false });
      }
    },
    async onShowQr(e) {
      const id = e.currentTarget.dataset.id;
      try {
        const path = await services().api.paymentCodes.qrImage(id);
        this.setData({ [`qr.${id}`]: path });
      } catch (err) {
        toast(errorText(err));
      }
    },
    onPreview(e) {
      const path = this.data.qr[e.currentTarget.dataset.id];
      if (path) wx.previewImage({ urls: [path], current: path });
    },
    onSave(e) {
      const path = this.data.qr[e.currentTarget.dataset.id];
      if (!path) return;
      wx.saveImageToPhotosAlbum({
        filePath: path,
        success: () => toast('已保存到相册，可打印张贴', 'success'),
        fail: () => toast('保存失败，请允许访问相册后重试'),
      });
    },
  },
});
