const crypto = require('crypto');
const vector = require('../vectors/request-signature.json');
const { sign, canonicalString, bodyHash, makeNonce, signatureHeaders } = require('../../src/utils/signature');

describe('request signature (shared vector computed with Python hmac)', () => {
  test.each(vector.cases.map((c) => [c.name, c]))('%s', (_name, c) => {
    const parts = { method: c.method, pathWithQuery: c.path_with_query, timestamp: c.timestamp, nonce: c.nonce, body: c.body };
    expect(bodyHash(c.body)).toBe(c.body_sha256);
    expect(canonicalString(parts)).toBe(c.canonical);
    expect(sign(c.sign_key, parts)).toBe(c.expected_signature);
  });
});

describe('signature headers', () => {
  test('nonce is 16-64 characters and headers verify with an independent HMAC', () => {
    const h = signatureHeaders('key', { method: 'post', pathWithQuery: '/api/payments', body: '{"a":1}', nowMs: 1767225600999 });
    expect(h['X-Timestamp']).toBe('1767225600');
    expect(h['X-Nonce'].length).toBeGreaterThanOrEqual(16);
    expect(h['X-Nonce'].length).toBeLessThanOrEqual(64);
    const canonical = `POST\n/api/payments\n1767225600\n${h['X-Nonce']}\n${crypto.createHash('sha256').update('{"a":1}').digest('hex')}\n`;
    expect(h['X-Signature']).toBe(crypto.createHmac('sha256', 'key').update(canonical).digest('hex'));
  });

  test('every call gets a new nonce', () => {
    const seen = new Set(Array.from({ length: 50 }, () => makeNonce()));
    expect(seen.size).toBe(50);
  });
});
