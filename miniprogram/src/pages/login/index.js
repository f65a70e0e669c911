const { services, errorText } = require('../../utils/page');

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (r) => (r.code ? resolve(r.code) : reject(new Error('no code'))),
      fail: reject,
    });
  });
}

Component({
  data: { loading: false, error: '', redirect: '' },
  methods: {
    onLoad(query) {
      this.setData({ redirect: query && query.redirect ? decodeURIComponent(query.redirect) : '' });
    },
    async onLogin() {
      if (this.data.loading) return;
      this.setData({ loading: true, error: '' });
      try {
        const code = await wxLogin();
        await services().api.auth.wechatLogin(code);
        wx.showToast({ title: '登录成功', icon: 'success' });
        if (this.data.redirect) wx.redirectTo({ url: this.data.redirect });
        else wx.navigateBack({ delta: 1 });
      } catch (e) {
        this.setData({ error: e && e.name === 'ApiError' ? errorText(e) : '微信登录失败，请稍后重试' });
      } finally {
        this.setData({ loading: false });
      }
    },
    onCancel() {
      wx.navigateBack({ delta: 1 });
    },
  },
});
