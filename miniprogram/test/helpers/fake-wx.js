// A `wx` for tests: storage in a Map, navigation recorded, and wx.request answered by routes
// (`'GET /api/points/balance': (req) => ({status, data})`), so pages run the real request layer.
function createFakeWx({ envVersion = 'develop', routes = {} } = {}) {
  const storage = new Map();
  const calls = { request: [], navigateTo: [], redirectTo: [], reLaunch: [], navigateBack: [], showToast: [], showModal: [], requestPayment: [], scanCode: [], downloadFile: [], setNavigationBarTitle: [], setClipboardData: [] };
  const fake = {
    calls,
    routes,
    envVersion,
    modalAnswer: true,
    // what Vant reads at render time
    getSystemInfoSync: () => ({ SDKVersion: '3.3.4', platform: 'devtools', windowWidth: 375, windowHeight: 667, pixelRatio: 2, theme: 'light' }),
    getWindowInfo: () => ({ windowWidth: 375, windowHeight: 667, pixelRatio: 2, statusBarHeight: 20 }),
    getDeviceInfo: () => ({ platform: 'devtools' }),
    getAppBaseInfo: () => ({ SDKVersion: '3.3.4', theme: 'light' }),
    canIUse: () => true,
    nextTick: (fn) => setTimeout(fn, 0),
    createSelectorQuery: () => {
      const q = { in: () => q, select: () => q, selectAll: () => q, boundingClientRect: () => q, fields: () => q, exec: (cb) => cb && cb([]) };
      return q;
    },
    getAccountInfoSync: () => ({ miniProgram: { envVersion: fake.envVersion, appId: 'wxtest' } }),
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, JSON.parse(JSON.stringify(v))),
    removeStorageSync: (k) => storage.delete(k),
    request(opts) {
      calls.request.push(opts);
      const u = new URL(opts.url);
      const key = `${opts.method || 'GET'} ${u.pathname}`;
      const handler = fake.routes[key];
      Promise.resolve()
        .then(() => (handler ? handler(opts, u) : { status: 404, data: { code: 'NOT_FOUND', message: 'no route', trace_id: 't-404' } }))
        .then((res) => {
          if (res && res.fail) opts.fail && opts.fail({ errMsg: res.fail });
          else opts.success && opts.success({ statusCode: res.status || 200, data: res.data, header: res.header || {} });
        });
    },
    downloadFile(opts) {
      calls.downloadFile.push(opts);
      Promise.resolve().then(() => opts.success && opts.success({ statusCode: 200, tempFilePath: 'wxfile://tmp/qr.png' }));
    },
    login(opts) {
      Promise.resolve().then(() => opts.success && opts.success({ code: fake.loginCode || 'test-alice' }));
    },
    scanCode(opts) {
      calls.scanCode.push(opts);
      Promise.resolve().then(() => {
        if (fake.scanResult) opts.success && opts.success(fake.scanResult);
        else opts.fail && opts.fail({ errMsg: fake.scanError || 'scanCode:fail cancel' });
        opts.complete && opts.complete();
      });
    },
    requestPayment(opts) {
      calls.requestPayment.push(opts);
      Promise.resolve().then(() => {
        if (fake.paymentOutcome === 'ok') opts.success && opts.success({ errMsg: 'requestPayment:ok' });
        else opts.fail && opts.fail({ errMsg: `requestPayment:fail ${fake.paymentOutcome || 'cancel'}` });
      });
    },
    navigateTo: (o) => calls.navigateTo.push(o.url),
    redirectTo: (o) => calls.redirectTo.push(o.url),
    reLaunch: (o) => calls.reLaunch.push(o.url),
    navigateBack(o = {}) {
      calls.navigateBack.push(o);
      if (o.success) o.success();
    },
    showToast: (o) => calls.showToast.push(o.title),
    showLoading: () => {},
    hideLoading: () => {},
    showModal(o) {
      calls.showModal.push(o);
      Promise.resolve().then(() => o.success && o.success({ confirm: fake.modalAnswer, cancel: !fake.modalAnswer }));
    },
    stopPullDownRefresh: () => {},
    setClipboardData(o) {
      calls.setClipboardData.push(o.data);
      if (o.success) o.success();
    },
    setNavigationBarTitle: (o) => calls.setNavigationBarTitle.push(o.title),
    previewImage: () => {},
    saveImageToPhotosAlbum: (o) => o.success && o.success(),
  };
  return fake;
}

/** A session as wechat-login would leave it. */
function loggedIn(fake, extra = {}) {
  fake.setStorageSync(
    'session.v1',
    Object.assign(
      { access_token: 'at-1', refresh_token: 'rt-1', sign_key: 'sk-1', expires_at: Date.now() + 3600e3, user: { id: 'u1', nickname: '小明' } },
      extra,
    ),
  );
}

module.exports = { createFakeWx, loggedIn };
