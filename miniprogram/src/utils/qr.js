// Finds the payment code id in whatever opened the pay page or came back from wx.scanCode:
//   ?code=<id>                                 (mini-program code or our own link)
//   ?q=<encoded https://…/q?code=<id>>         (the printed QR: APP_QR_BASE_URL?code=<id>,
//                                               opened through the "scan ordinary QR codes" rule)
//   ?scene=<id as 32 hex digits>               (wxacode.getUnlimited: 32 characters at most, so
//                                               the server sends a UUID without its dashes)
//   ?scene=<encoded code=<id>>                 (older mini-program codes)
//   scan result path "pages/pay/index?code=<id>" or result "https://…?code=<id>"
const ID = /^[A-Za-z0-9_-]{1,64}$/;

function param(query, name) {
  const m = new RegExp(`(?:^|[?&])${name}=([^&#]*)`).exec(query || '');
  return m ? safeDecode(m[1]) : '';
}

function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch (e) {
    return s;
  }
}

function valid(id) {
  return ID.test(id || '') ? id : '';
}

// A UUID written as 32 hex digits (a mini-program code's scene) gets its dashes back, so the
// id is the one the server stores.
function undashed(id) {
  const m = /^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/i.exec(id || '');
  return m ? m.slice(1).join('-').toLowerCase() : id;
}

function codeFromOptions(options = {}) {
  if (options.code) return valid(safeDecode(String(options.code)));
  if (options.q) return valid(param(safeDecode(String(options.q)), 'code'));
  if (options.scene) {
    const scene = safeDecode(String(options.scene));
    return valid(undashed(scene.includes('=') ? param(scene, 'code') : scene));
  }
  return '';
}

function codeFromScan(res = {}) {
  if (res.path) {
    const query = res.path.split('?')[1] || '';
    const id = valid(param(query, 'code')) || valid(undashed(param(query, 'scene')));
    if (id) return id;
  }
  const text = String(res.result || '');
  if (text.includes('code=')) return valid(param(text.split('?')[1] || text, 'code'));
  return '';
}

module.exports = { codeFromOptions, codeFromScan };
