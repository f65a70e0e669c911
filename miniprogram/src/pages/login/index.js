const { services, errorText } = require('../../utils/page');
const { pageUrl } = require('../../services/index');

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
        this.leave();
      } catch (e) {
        this.setData({ error: e && e.name === 'ApiError' ? errorText(e) : '微信登录失败，请稍后重试' });
      } finally {
        this.setData({ loading: false });
      }
    },
    /**
     * Back to where login was asked for. When that page is right below this one (a page that
     * found no session, or a call that lost it), it is reopened so it loads with the new
     * session instead of staying on the stack half-loaded.
     */
    leave() {
      const home = () => wx.reLaunch({ url: '/pages/home/index' });
      const { redirect } = this.data;
      if (!redirect) {
        wx.navigateBack({ delta: 1, fail: home });
      } else if (pageUrl(1) === redirect) {
        wx.navigateBack({ delta: 1, success: () => wx.redirectTo({ url: redirect }), fail: () => wx.redirectTo({ url: redirect }) });
      } else {
        wx.redirectTo({ url: redirect });
      }
    },
    onCancel() {
      wx.navigateBack({ delta: 1, fail: () => wx.reLaunch({ url: '/pages/home/index' }) });
    },
  },
});
