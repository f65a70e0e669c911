const { codeFromScan } = require('../../utils/qr');

Component({
  data: { message: '', scanning: false },
  methods: {
    onLoad(query) {
      if (query && query.auto === '1') this.onScan();
    },
    onScan() {
      if (this.data.scanning) return;
      this.setData({ scanning: true, message: '' });
      wx.scanCode({
        onlyFromCamera: false,
        scanType: ['qrCode', 'wxCode'],
        success: (res) => {
          const code = codeFromScan(res);
          if (!code) {
            this.setData({ message: '这不是本平台的收款码，请扫描商家的收款码' });
            return;
          }
          wx.navigateTo({ url: `/pages/pay/index?code=${encodeURIComponent(code)}` });
        },
        fail: (err) => {
          const cancelled = /cancel/i.test((err && err.errMsg) || '');
          this.setData({ message: cancelled ? '已取消扫码' : '无法打开相机，请检查相机权限' });
        },
        complete: () => this.setData({ scanning: false }),
      });
    },
  },
});
