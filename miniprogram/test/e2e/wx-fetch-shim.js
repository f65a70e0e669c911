// A `wx` for Node over fetch, so the mini-program's own services (request layer, signing,
// refresh, API module, pay flow) run unchanged against a real server.
//   wx.login          -> code `test-<name>` (the sandbox's code2session accepts these)
//   wx.requestPayment -> `onPay(payParams)`, which the test points at the sandbox's pay control
//   wx.scanCode       -> the path a printed payment code opens
function createFetchWx({ baseUrl, loginName, onPay, scanPath, fetchImpl = fetch }) {
  const storage = new Map([['API_BASE_URL', baseUrl]]);
  return {
    getAccountInfoSync: () => ({ miniProgram: { envVersion: 'develop', appId: 'wx-e2e' } }),
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
    request({ url, method = 'GET', header = {}, data, timeout = 15000, success, fail }) {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), timeout);
      fetchImpl(url, { method, headers: header, body: data === undefined ? undefined : data, signal: ctl.signal })
        .then(async (res) => {
          const text = await res.text();
          let body = text;
          try {
            body = text ? JSON.parse(text) : '';
          } catch (e) {
            // not JSON: handed over as text, as wx.request does
          }
          const headers = {};
          res.headers.forEach((v, k) => {
            headers[k] = v;
          });
          success && success({ statusCode: res.status, data: body, header: headers });
        })
        .catch((e) => fail && fail({ errMsg: `request:fail ${e.name === 'AbortError' ? 'timeout' : e.message}` }))
        .finally(() => clearTimeout(timer));
    },
    downloadFile({ url, header, success, fail }) {
      fetchImpl(url, { headers: header })
        .then((res) => success && success({ statusCode: res.status, tempFilePath: `memory://${url}` }))
        .catch((e) => fail && fail({ errMsg: `downloadFile:fail ${e.message}` }));
    },
    login({ success }) {
      success({ code: `test-${loginName}` });
    },
    scanCode({ success }) {
      success({ scanType: 'WX_CODE', result: '', path: scanPath() });
    },
    requestPayment(opts) {
      Promise.resolve(onPay(opts)).then(
        () => opts.success && opts.success({ errMsg: 'requestPayment:ok' }),
        (e) => opts.fail && opts.fail({ errMsg: `requestPayment:fail ${e.message}` }),
      );
    },
    navigateTo: () => {},
    showToast: () => {},
  };
}

module.exports = { createFetchWx };
