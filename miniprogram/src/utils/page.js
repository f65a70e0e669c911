// Small helpers every page uses.
const { getServices } = require('../services/index');
const { describe } = require('./errors');

function services() {
  return getServices();
}

function toast(title, icon = 'none') {
  wx.showToast({ title, icon, duration: 2000 });
}

function errorText(err) {
  return describe(err);
}

/** wx.showModal as a promise of "confirmed?". */
function confirm(title, content) {
  return new Promise((resolve) => {
    wx.showModal({ title, content, success: (r) => resolve(Boolean(r.confirm)), fail: () => resolve(false) });
  });
}

module.exports = { services, toast, errorText, confirm };
