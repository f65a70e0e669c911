// The one wrapper around wx.request. Everything about talking to the API lives here: base URL,
// bearer token, silent refresh, request signing, retries, and turning answers into ApiError.
// It takes `wx` as an argument so the same code runs in Node over a fetch-based shim.
const { signatureHeaders } = require('../utils/signature');
const { ApiError, fromResponse } = require('../utils/errors');

const MUTATING = { POST: true, PUT: true, PATCH: true, DELETE: true };
// Answers after which an idempotent call may be sent again: the server did not act on it.
const RETRYABLE_CODES = { DATABASE_UNAVAILABLE: true, NOT_READY: true, RATE_LIMITED: true, TIMEOUT: true };
const RETRYABLE_STATUS = { 429: true, 502: true, 503: true, 504: true };
const REFRESH_MARGIN_MS = 60 * 1000;
const SKEW_TOLERANCE_MS = 30 * 1000;

function buildQuery(query) {
  if (!query) return '';
  const parts = [];
  Object.keys(query).forEach((k) => {
    const v = query[k];
    if (v === undefined || v === null || v === '') return;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  });
  return parts.length ? `?${parts.join('&')}` : '';
}

function parseBody(data) {
  if (typeof data !== 'string') return data;
  if (data === '') return null;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  const want = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === want);
  return key ? headers[key] : undefined;
}

/**
 * @param {object} opts
 * @param {object} opts.wx            wx or a shim with request/downloadFile
 * @param {() => string} opts.baseUrl
 * @param {object} opts.session       {get(), set(tokens), clear()}
 * @param {(err) => void} [opts.onAuthLost]  called once the session cannot be renewed
 */
function createClient({
  wx,
  baseUrl,
  session,
  onAuthLost = () => {},
  now = () => Date.now(),
  randomInt,
  retries = 2,
  retryDelayMs = 300,
  timeoutMs = 15000,
  sleep = (ms) => new Promise((r) => setTimeout(r, ms)),
}) {
  let refreshing = null;
  let clockSkewMs = 0; // server time minus ours, learnt from Date headers; keeps signatures fresh

  function learnClock(headers) {
    const date = headerValue(headers, 'Date');
    const server = date ? Date.parse(date) : NaN;
    if (Number.isNaN(server)) return;
    const skew = server - now();
    clockSkewMs = Math.abs(skew) > SKEW_TOLERANCE_MS ? skew : 0;
  }

  function send({ method, url, headers, body }) {
    return new Promise((resolve) => {
      const opts = {
        url,
        method,
        header: headers,
        timeout: timeoutMs,
        dataType: 'json',
        success: (res) => resolve({ ok: true, status: res.statusCode, data: res.data, headers: res.header || {} }),
        fail: (err) => resolve({ ok: false, err }),
      };
      if (body !== '') opts.data = body;
      wx.request(opts);
    });
  }

  function networkError(err) {
    const msg = (err && err.errMsg) || '';
    return new ApiError({ code: /timeout/i.test(msg) ? 'TIMEOUT' : 'NETWORK_ERROR', serverMessage: msg });
  }

  function authLost(err) {
    session.clear();
    onAuthLost(err);
    return err;
  }

  /** POST /api/auth/refresh once for everyone waiting; the old refresh token stops working. */
  function refresh() {
    if (refreshing) return refreshing;
    const current = session.get();
    if (!current || !current.refresh_token) {
      return Promise.reject(authLost(new ApiError({ code: 'UNAUTHORIZED', status: 401 })));
    }
    refreshing = (async () => {
      const res = await send({
        method: 'POST',
        url: baseUrl() + '/api/auth/refresh',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (!res.ok) throw networkError(res.err);
      learnClock(res.headers);
      if (res.status >= 200 && res.status < 300) {
        const tokens = parseBody(res.data);
        session.set(tokens);
        return tokens;
      }
      const err = fromResponse(res.status, res.data, res.headers);
      if (res.status === 401 || res.status === 403 || res.status === 400 || res.status === 422) throw authLost(err);
      throw err;
    })();
    const done = () => {
      refreshing = null;
    };
    refreshing.then(done, done);
    return refreshing;
  }

  async function ensureFresh() {
    const s = session.get();
    if (s && s.expires_at && s.refresh_token && now() > s.expires_at - REFRESH_MARGIN_MS) await refresh();
  }

  /**
   * One API call. `retry` defaults to "idempotent": GET, or a call carrying an Idempotency-Key
   * (the key stays the same on every attempt; timestamp, nonce and signature are new each time).
   */
  async function request({ method = 'GET', path, query, data, auth = true, sign, idempotencyKey, retry }) {
    const verb = method.toUpperCase();
    const pathWithQuery = path + buildQuery(query);
    const body = data === undefined || verb === 'GET' ? '' : JSON.stringify(data);
    const mayRetry = retry === undefined ? verb === 'GET' || Boolean(idempotencyKey) : retry;
    let refreshed = false;
    let attempt = 0;

    for (;;) {
      if (auth) {
        if (!session.get()) throw authLost(new ApiError({ code: 'UNAUTHORIZED', status: 401 }));
        await ensureFresh();
      }
      const s = session.get();
      const headers = {};
      if (body !== '') headers['Content-Type'] = 'application/json';
      if (auth && s) headers.Authorization = `Bearer ${s.access_token}`;
      if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
      const shouldSign = sign === undefined ? auth && MUTATING[verb] : sign;
      if (shouldSign && s && s.sign_key) {
        Object.assign(
          headers,
          signatureHeaders(s.sign_key, { method: verb, pathWithQuery, body, nowMs: now() + clockSkewMs, randomInt }),
        );
      }

      const res = await send({ method: verb, url: baseUrl() + pathWithQuery, headers, body });
      let err;
      if (!res.ok) {
        err = networkError(res.err);
      } else {
        learnClock(res.headers);
        if (res.status >= 200 && res.status < 300) return parseBody(res.data);
        err = fromResponse(res.status, res.data, res.headers);
        if (res.status === 401 && auth) {
          if (!refreshed) {
            refreshed = true;
            await refresh(); // throws (and ends the session) when it cannot renew
            continue; // the server refused before acting, so sending again is safe for any call
          }
          throw authLost(err);
        }
      }
      const transient = !res.ok || RETRYABLE_STATUS[res.status] || RETRYABLE_CODES[err.code];
      if (mayRetry && transient && attempt < retries) {
        attempt += 1;
        await sleep(retryDelayMs * 2 ** (attempt - 1));
        continue;
      }
      throw err;
    }
  }

  /** Fetches a protected file (the payment code's QR image) to a temporary path. */
  async function download(path) {
    const s = session.get();
    if (!s) throw authLost(new ApiError({ code: 'UNAUTHORIZED', status: 401 }));
    await ensureFresh();
    const token = session.get().access_token;
    const res = await new Promise((resolve) => {
      wx.downloadFile({
        url: baseUrl() + path,
        header: { Authorization: `Bearer ${token}` },
        success: (r) => resolve({ ok: true, status: r.statusCode, path: r.tempFilePath }),
        fail: (e) => resolve({ ok: false, err: e }),
      });
    });
    if (!res.ok) throw networkError(res.err);
    if (res.status >= 200 && res.status < 300) return res.path;
    throw fromResponse(res.status, null, {});
  }

  return { request, refresh, download, buildQuery };
}

module.exports = { createClient, buildQuery };
