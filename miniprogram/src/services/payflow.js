// The shopper's payment, step by step, shared by the pay page and the end-to-end test:
// create the order (Idempotency-Key kept across retries) -> wx.requestPayment -> poll the order.
const { ApiError } = require('../utils/errors');

const FINAL = { paid: true, refunding: true, partially_refunded: true, refunded: true, closed: true };

function createOrder(api, { paymentCodeId, amountFen, idempotencyKey }) {
  return api.payments.create({ payment_code_id: paymentCodeId, amount_fen: amountFen }, idempotencyKey);
}

/** Resolves when WeChat says paid; rejects with PAYMENT_CANCELLED or PAYMENT_FAILED. */
function requestPayment(wxApi, payParams) {
  return new Promise((resolve, reject) => {
    wxApi.requestPayment({
      timeStamp: payParams.timeStamp,
      nonceStr: payParams.nonceStr,
      package: payParams.package,
      signType: payParams.signType,
      paySign: payParams.paySign,
      success: resolve,
      fail: (err) => {
        const msg = (err && err.errMsg) || '';
        reject(new ApiError({ code: /cancel/i.test(msg) ? 'PAYMENT_CANCELLED' : 'PAYMENT_FAILED', serverMessage: msg }));
      },
    });
  });
}

/**
 * Waits for the order to be final with GET /api/payments/{order_no}?wait_ms=…: the server
 * answers when the order settles (paid with its points booked, or closed), so one request
 * usually does. WeChat's "success" only means the shopper paid; the order is paid once the
 * server has the notification. Between answers that are not final yet it pauses intervalMs.
 */
async function pollOrder(api, orderNo, { intervalMs = 1500, timeoutMs = 30000, waitMs = 8000, pointsWaitTries = 3, sleep, now = () => Date.now() } = {}) {
  const wait = sleep || ((ms) => new Promise((r) => setTimeout(r, ms)));
  const deadline = now() + timeoutMs;
  const waitFor = () => Math.max(0, Math.min(waitMs, deadline - now()));
  let order;
  for (;;) {
    try {
      order = await api.payments.get(orderNo, { waitMs: waitFor() });
    } catch (e) {
      if (e.code !== 'NETWORK_ERROR' && e.code !== 'TIMEOUT') throw e;
    }
    if (order && FINAL[order.status]) break;
    if (now() >= deadline) throw new ApiError({ code: 'PAYMENT_PENDING' });
    await wait(intervalMs);
  }
  for (let i = 0; i < pointsWaitTries && order.status === 'paid' && !order.points_awarded; i += 1) {
    await wait(intervalMs);
    order = await api.payments.get(orderNo, { waitMs: waitFor() });
  }
  return order;
}

module.exports = { createOrder, requestPayment, pollOrder, FINAL };
