// Tokens and sign_key, kept in storage so a restart stays logged in, mirrored into the store.
const STORAGE_KEY = 'session.v1';

function createSession({ storage, store, now = () => Date.now() }) {
  let cached;

  function load() {
    if (cached === undefined) {
      try {
        cached = storage.getStorageSync(STORAGE_KEY) || null;
      } catch (e) {
        cached = null;
      }
    }
    return cached;
  }

  function publish() {
    const s = load();
    if (store) store.setState({ loggedIn: Boolean(s), user: (s && s.user) || null });
  }

  return {
    get: load,
    /** Accepts the answer of wechat-login or refresh: {access_token, refresh_token, expires_in, sign_key, user?}. */
    set(tokens) {
      const prev = load() || {};
      const next = {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token || prev.refresh_token,
        sign_key: tokens.sign_key || prev.sign_key,
        expires_at: tokens.expires_in ? now() + Number(tokens.expires_in) * 1000 : prev.expires_at || null,
        user: tokens.user || prev.user || null,
      };
      cached = next;
      try {
        storage.setStorageSync(STORAGE_KEY, next);
      } catch (e) {
        // storage full or unavailable: the session still works until the app is closed
      }
      publish();
      return next;
    },
    setUser(user) {
      const s = load();
      if (!s) return;
      cached = Object.assign({}, s, { user });
      try {
        storage.setStorageSync(STORAGE_KEY, cached);
      } catch (e) {
        // as above
      }
      publish();
    },
    clear() {
      cached = null;
      try {
        storage.removeStorageSync(STORAGE_KEY);
      } catch (e) {
        // nothing stored
      }
      publish();
    },
    publish,
  };
}

module.exports = { createSession, STORAGE_KEY };
