const { MESSAGES, FALLBACK_MESSAGE, fromResponse, messageFor, describe: describeErr, ApiError } = require('../../src/utils/errors');

const API_CODES = [
  'UNAUTHORIZED', 'FORBIDDEN', 'NOT_FOUND', 'VALIDATION_FAILED', 'MALFORMED_JSON', 'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE', 'METHOD_NOT_ALLOWED', 'RATE_LIMITED', 'SIGNATURE_INVALID', 'REPLAYED_REQUEST',
  'TOKEN_EXPIRED', 'POINTS_INSUFFICIENT', 'IDEMPOTENCY_KEY_REUSED', 'PAYMENT_CODE_DISABLED', 'MERCHANT_NOT_ACTIVE',
  'AMOUNT_INVALID', 'ORDER_NOT_PAYABLE', 'RISK_BLOCKED', 'WECHAT_LOGIN_FAILED', 'WECHAT_CODE_USED',
  'WECHAT_RATE_LIMITED', 'WECHAT_HIGH_RISK', 'DATABASE_UNAVAILABLE', 'INTERNAL', 'NOT_READY',
  // already answered by the server's error layer
  'BAD_BODY', 'INVALID_QUERY', 'INVALID_PATH',
];

describe('Chinese error messages', () => {
  test.each(API_CODES)('%s has its own Chinese message', (code) => {
    expect(MESSAGES[code]).toMatch(/[\u4e00-\u9fa5]/);
    expect(messageFor(code)).not.toBe(FALLBACK_MESSAGE);
  });

  test('an unknown code falls back to a generic message', () => {
    expect(messageFor('SOMETHING_NEW')).toBe(FALLBACK_MESSAGE);
    expect(fromResponse(418, { code: 'SOMETHING_NEW', message: 'x', trace_id: 't' }).message).toBe(FALLBACK_MESSAGE);
  });

  test('the API error shape is read, the server text kept aside', () => {
    const e = fromResponse(409, { code: 'ORDER_NOT_PAYABLE', message: 'order is paid', trace_id: 'tr-1' });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('ORDER_NOT_PAYABLE');
    expect(e.message).toBe(MESSAGES.ORDER_NOT_PAYABLE);
    expect(e.serverMessage).toBe('order is paid');
    expect(e.traceId).toBe('tr-1');
  });

  test('a body that is not the error shape is read by status', () => {
    expect(fromResponse(502, '<html>bad gateway</html>').code).toBe('INTERNAL');
    expect(fromResponse(429, '').code).toBe('RATE_LIMITED');
    expect(fromResponse(413, null).code).toBe('PAYLOAD_TOO_LARGE');
  });

  test('server errors show the trace id to quote', () => {
    const e = fromResponse(500, JSON.stringify({ code: 'INTERNAL', message: 'internal', trace_id: 'abc123' }));
    expect(describeErr(e)).toBe(`${MESSAGES.INTERNAL}（编号 abc123）`);
    expect(describeErr(new Error('boom'))).toBe(FALLBACK_MESSAGE);
  });
});
