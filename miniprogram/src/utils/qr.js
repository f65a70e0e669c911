// Finds the payment code id in whatever opened the pay page or came back from wx.scanCode:
//   ?code=<id>                                 (mini-program code or our own link)
//   ?q=<encoded https://…/pay?code=<id>>       (a plain QR bound to the mini-program)
//   ?scene=<encoded code=<id>>                 (wxacode.getUnlimited)
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

function codeFromOptions(options = {}) {
  if (options.code) return valid(safeDecode(String(options.code)));
  if (options.q) return valid(param(safeDecode(String(options.q)), 'code'));
  if (options.scene) {
    const scene = safeDecode(String(options.scene));
    return valid(scene.includes('=') ? param(scene, 'code') : scene);
  }
  return '';
}

function codeFromScan(res = {}) {
  if (res.path) {
    const id = valid(param(res.path.split('?')[1] || '', 'code'));
    if (id) return id;
  }
  const text = String(res.result || '');
  if (text.includes('code=')) return valid(param(text.split('?')[1] || text, 'code'));
  return '';
}

module.exports = { codeFromOptions, codeFromScan };
