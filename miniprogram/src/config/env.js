// Where the API lives for each mini-program version (wx.getAccountInfoSync().miniProgram.envVersion).
// develop: DevTools and preview; trial: 体验版; release: the published version.
// In develop the base URL can be pointed elsewhere without a rebuild:
//   wx.setStorageSync('API_BASE_URL', 'http://192.168.1.20:8080')   (DevTools console)
const BASE_URLS = {
  develop: 'http://127.0.0.1:8080',
  trial: 'https://api-trial.points-pay.example.cn',
  release: 'https://api.points-pay.example.cn',
};

const OVERRIDE_KEY = 'API_BASE_URL';

function envVersion(wxApi) {
  try {
    const info = wxApi.getAccountInfoSync();
    const v = info && info.miniProgram && info.miniProgram.envVersion;
    return BASE_URLS[v] ? v : 'release';
  } catch (e) {
    return 'release';
  }
}

function baseUrl(wxApi) {
  const env = envVersion(wxApi);
  if (env === 'develop') {
    try {
      const override = wxApi.getStorageSync(OVERRIDE_KEY);
      if (override) return String(override).replace(/\/+$/, '');
    } catch (e) {
      // no storage: use the default
    }
  }
  return BASE_URLS[env];
}

module.exports = { BASE_URLS, OVERRIDE_KEY, envVersion, baseUrl };
