// Every endpoint of API.md the mini-program uses, by name. Paths and fields follow API.md exactly.
function listOf(answer) {
  // Lists are {items, next_cursor}; a few "mine" answers may be a bare array.
  if (Array.isArray(answer)) return { items: answer, next_cursor: null };
  return { items: (answer && answer.items) || [], next_cursor: (answer && answer.next_cursor) || null };
}

function page({ cursor, limit = 20 } = {}) {
  return { cursor, limit };
}

const enc = encodeURIComponent;

function createApi(client, session) {
  const { request } = client;
  return {
    auth: {
      /** wx.login's code -> tokens, sign_key and user; the session is stored. */
      async wechatLogin(code) {
        const tokens = await request({ method: 'POST', path: '/api/auth/wechat-login', data: { code }, auth: false });
        session.set(tokens);
        return tokens;
      },
      refresh: () => client.refresh(),
      /** Ends the session on the server too (its tokens stop working); the local session goes whatever it answers. */
      async logout() {
        try {
          if (session.get && session.get()) await request({ method: 'POST', path: '/api/auth/logout' });
        } catch (e) {
          // Signed out locally all the same.
        } finally {
          session.clear();
        }
      },
    },
    users: {
      me: () => request({ path: '/api/users/me' }),
      update: (patch) => request({ method: 'PATCH', path: '/api/users/me', data: patch }),
      setPhone: (phone) => request({ method: 'PUT', path: '/api/users/me/phone', data: { phone } }),
    },
    paymentCodes: {
      get: (codeId) => request({ path: `/api/payment-codes/${enc(codeId)}` }),
      qrImage: (codeId) => client.download(`/api/payment-codes/${enc(codeId)}/qr.png`),
    },
    payments: {
      /** The key must be the same for every try of one payment: the server answers a repeat with the same order. */
      create: ({ payment_code_id, amount_fen }, idempotencyKey) =>
        request({ method: 'POST', path: '/api/payments', data: { payment_code_id, amount_fen }, idempotencyKey }),
      /** With waitMs, an order still moving is answered when it settles (or after waitMs): one request, not polling. */
      get: (orderNo, { waitMs } = {}) =>
        request({ path: `/api/payments/${enc(orderNo)}`, query: waitMs > 0 ? { wait_ms: Math.min(waitMs, 10000) } : undefined }),
      list: async (p) => listOf(await request({ path: '/api/payments', query: page(p) })),
      cancel: (orderNo) => request({ method: 'POST', path: `/api/payments/${enc(orderNo)}/cancel` }),
    },
    points: {
      balance: () => request({ path: '/api/points/balance' }),
      history: async (p) => listOf(await request({ path: '/api/points/history', query: page(p) })),
      statistics: () => request({ path: '/api/points/statistics' }),
      deduct: ({ points, reason }, idempotencyKey) =>
        request({ method: 'POST', path: '/api/points/deduct', data: { points, reason }, idempotencyKey }),
    },
    merchants: {
      register: (form) =>
        request({
          method: 'POST',
          path: '/api/merchants',
          data: {
            merchant_name: form.merchant_name,
            contact_name: form.contact_name,
            contact_phone: form.contact_phone,
            business_license: form.business_license,
            address: form.address,
          },
        }),
      mine: async () => listOf(await request({ path: '/api/merchants/me' })).items,
      createCode: (merchantId, { label, amount_fen }) =>
        request({
          method: 'POST',
          path: `/api/merchants/${enc(merchantId)}/payment-codes`,
          data: amount_fen ? { label, amount_fen } : { label },
        }),
      codes: async (merchantId) => listOf(await request({ path: `/api/merchants/${enc(merchantId)}/payment-codes` })).items,
      stats: async (merchantId, { from, to }) =>
        listOf(await request({ path: `/api/merchants/${enc(merchantId)}/stats`, query: { from, to } })).items,
      // { merchant_id, from, to, fee_rate_bp, items: [day], totals }: every day of the range.
      settlements: (merchantId, { from, to }) =>
        request({ path: `/api/merchants/${enc(merchantId)}/settlements`, query: { from, to } }),
      orders: async (merchantId, p) =>
        listOf(await request({ path: `/api/merchants/${enc(merchantId)}/orders`, query: page(p) })),
      // Not retried: API.md gives refunds no Idempotency-Key, so a second send could refund twice.
      refund: (merchantId, orderNo, { amount_fen, reason }) =>
        request({
          method: 'POST',
          path: `/api/merchants/${enc(merchantId)}/orders/${enc(orderNo)}/refund`,
          data: { amount_fen, reason },
          retry: false,
        }),
    },
    // Merchant staff: the owner's invites and staff; anyone signed in redeems a code.
    staff: {
      // { id, code, role, expires_at }: the code is shown this once.
      invite: (merchantId, role) =>
        request({ method: 'POST', path: `/api/merchants/${enc(merchantId)}/staff/invites`, data: { role }, retry: false }),
      invites: async (merchantId) => listOf(await request({ path: `/api/merchants/${enc(merchantId)}/staff/invites` })).items,
      revokeInvite: (merchantId, inviteId) =>
        request({ method: 'DELETE', path: `/api/merchants/${enc(merchantId)}/staff/invites/${enc(inviteId)}` }),
      list: async (merchantId) => listOf(await request({ path: `/api/merchants/${enc(merchantId)}/staff` })).items,
      changeRole: (merchantId, userId, role) =>
        request({ method: 'PATCH', path: `/api/merchants/${enc(merchantId)}/staff/${enc(userId)}`, data: { role } }),
      remove: (merchantId, userId) =>
        request({ method: 'DELETE', path: `/api/merchants/${enc(merchantId)}/staff/${enc(userId)}` }),
      // { merchant_id, merchant_name, role }. The same code again answers the same.
      redeem: (code) => request({ method: 'POST', path: '/api/staff/invites/redeem', data: { code } }),
    },
  };
}

module.exports = { createApi, listOf };
