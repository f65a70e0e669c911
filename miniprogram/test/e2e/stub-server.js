// A small in-process stand-in for the API server and the sandbox, written from API.md alone.
// It checks what a real server must check of the mini-program (bearer token, X-Timestamp within
// 300 s, single-use X-Nonce, X-Signature over the raw path, query and body, Idempotency-Key), so
// the end-to-end scenario and the fetch-based wx shim are exercised over real HTTP until the
// real server's payment API is there. It is not the server: the real run needs E2E_BASE_URL.
const http = require('http');
const crypto = require('crypto');

function startStub() {
  const users = new Map(); // access token -> {user, signKey}
  const refreshTokens = new Map();
  const nonces = new Set();
  const merchants = new Map();
  const codes = new Map();
  const orders = new Map();
  const byKey = new Map();
  const points = new Map(); // user id -> {available, history: []}
  let seq = 0;
  const id = (p) => `${p}${(seq += 1)}`;
  const tok = () => crypto.randomBytes(16).toString('hex');

  function issue(user) {
    const access = tok();
    const refresh = tok();
    const signKey = tok();
    users.set(access, { user, signKey });
    refreshTokens.set(refresh, user);
    return { access_token: access, refresh_token: refresh, expires_in: 7200, sign_key: signKey, user };
  }

  function ledger(userId) {
    if (!points.has(userId)) points.set(userId, { available: 0, earned: 0, history: [] });
    return points.get(userId);
  }

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const send = (status, data) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'X-Request-Id': tok(), Date: new Date().toUTCString() });
        res.end(JSON.stringify(data));
      };
      const fail = (status, code) => send(status, { code, message: code.toLowerCase(), trace_id: tok() });
      const body = raw ? JSON.parse(raw) : {};
      const url = new URL(req.url, 'http://stub');
      const route = `${req.method} ${url.pathname}`;
      const m = (re) => re.exec(url.pathname);

      // --- sandbox ---
      let g = m(/^\/sandbox\/orders\/([^/]+)\/pay$/);
      if (req.method === 'POST' && g) {
        const o = orders.get(decodeURIComponent(g[1]));
        if (!o) return fail(404, 'NOT_FOUND');
        o.status = 'paid';
        o.paid_at = new Date().toISOString();
        o.points_awarded = Math.floor(o.amount_fen / 100);
        const l = ledger(o.user_id);
        l.available += o.points_awarded;
        l.earned += o.points_awarded;
        l.history.unshift({ id: id('r'), change: o.points_awarded, balance_after: l.available, kind: 'award', source: 'payment', description: '消费奖励', created_at: o.paid_at });
        return send(200, { out_trade_no: o.order_no, trade_state: 'SUCCESS' });
      }

      // --- unauthenticated ---
      if (route === 'POST /api/auth/wechat-login') {
        if (!/^test-.+/.test(body.code || '')) return fail(400, 'WECHAT_LOGIN_FAILED');
        return send(200, issue({ id: `u-${body.code.slice(5)}`, nickname: body.code.slice(5) }));
      }
      if (route === 'POST /api/auth/refresh') {
        const user = refreshTokens.get(body.refresh_token);
        if (!user) return fail(401, 'UNAUTHORIZED');
        refreshTokens.delete(body.refresh_token);
        return send(200, issue(user));
      }
      if (route === 'POST /api/admin/login') {
        return body.password === 'stub-admin' ? send(200, { access_token: 'admin-token' }) : fail(401, 'UNAUTHORIZED');
      }
      g = m(/^\/api\/admin\/merchants\/([^/]+)\/approve$/);
      if (req.method === 'POST' && g) {
        if (req.headers.authorization !== 'Bearer admin-token') return fail(401, 'UNAUTHORIZED');
        merchants.get(g[1]).status = 'approved';
        return send(200, merchants.get(g[1]));
      }

      // --- the mini-program's calls: bearer, and signed when mutating ---
      const auth = users.get((req.headers.authorization || '').replace(/^Bearer /, ''));
      if (!auth) return fail(401, 'UNAUTHORIZED');
      if (req.method !== 'GET') {
        const ts = Number(req.headers['x-timestamp']);
        const nonce = req.headers['x-nonce'] || '';
        if (!ts || Math.abs(Date.now() / 1000 - ts) > 300 || nonce.length < 16 || nonce.length > 64) return fail(401, 'SIGNATURE_INVALID');
        if (nonces.has(nonce)) return fail(401, 'REPLAYED_REQUEST');
        const canonical = `${req.method}\n${req.url}\n${ts}\n${nonce}\n${crypto.createHash('sha256').update(raw).digest('hex')}\n`;
        const want = crypto.createHmac('sha256', auth.signKey).update(canonical).digest('hex');
        if (want !== req.headers['x-signature']) return fail(401, 'SIGNATURE_INVALID');
        nonces.add(nonce);
      }
      const me = auth.user;

      if (route === 'POST /api/merchants') {
        const merchant = Object.assign({ id: id('m'), owner: me.id, status: 'pending' }, body);
        merchants.set(merchant.id, merchant);
        return send(201, merchant);
      }
      g = m(/^\/api\/merchants\/([^/]+)\/payment-codes$/);
      if (req.method === 'POST' && g) {
        const merchant = merchants.get(g[1]);
        if (!merchant || merchant.owner !== me.id) return fail(403, 'FORBIDDEN');
        if (merchant.status !== 'approved') return fail(409, 'MERCHANT_NOT_ACTIVE');
        const code = { id: id('pc'), merchant_id: merchant.id, label: body.label, amount_fen: body.amount_fen || null };
        codes.set(code.id, code);
        return send(201, code);
      }
      g = m(/^\/api\/payment-codes\/([^/]+)$/);
      if (req.method === 'GET' && g) {
        const code = codes.get(decodeURIComponent(g[1]));
        if (!code) return fail(404, 'NOT_FOUND');
        return send(200, Object.assign({ merchant_name: merchants.get(code.merchant_id).merchant_name }, code));
      }
      if (route === 'POST /api/payments') {
        const key = req.headers['idempotency-key'];
        if (!key) return fail(422, 'VALIDATION_FAILED');
        if (byKey.has(key)) return send(200, byKey.get(key));
        const code = codes.get(body.payment_code_id);
        if (!code) return fail(404, 'NOT_FOUND');
        if (!(body.amount_fen > 0)) return fail(422, 'AMOUNT_INVALID');
        const order = {
          order_no: id('P'),
          user_id: me.id,
          amount_fen: body.amount_fen,
          refunded_fen: 0,
          status: 'paying',
          merchant_name: merchants.get(code.merchant_id).merchant_name,
          points_awarded: 0,
          paid_at: null,
        };
        orders.set(order.order_no, order);
        const answer = {
          order_no: order.order_no,
          amount_fen: order.amount_fen,
          status: order.status,
          pay_params: { timeStamp: String(Math.floor(Date.now() / 1000)), nonceStr: tok(), package: `prepay_id=wx${order.order_no}`, signType: 'RSA', paySign: tok() },
        };
        byKey.set(key, answer);
        return send(200, answer);
      }
      g = m(/^\/api\/payments\/([^/]+)$/);
      if (req.method === 'GET' && g) {
        const o = orders.get(decodeURIComponent(g[1]));
        if (!o || o.user_id !== me.id) return fail(404, 'NOT_FOUND');
        const { user_id: _u, ...visible } = o;
        return send(200, visible);
      }
      if (route === 'GET /api/points/balance') {
        const l = ledger(me.id);
        return send(200, { available: l.available, total_earned: l.earned, used: 0, expired: 0, expiring_soon: [] });
      }
      if (route === 'GET /api/points/history') {
        const limit = Number(url.searchParams.get('limit') || 20);
        return send(200, { items: ledger(me.id).history.slice(0, limit), next_cursor: null });
      }
      return fail(404, 'NOT_FOUND');
    });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}`;
      resolve({ url, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

module.exports = { startStub };
