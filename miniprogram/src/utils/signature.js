// Request signing as API.md defines it, kept free of `wx` so Node tests (and the shared vector)
// exercise exactly the code the mini-program runs:
//   X-Signature = hex HMAC-SHA256(sign_key, METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nhex_sha256(BODY)\n)
const { sha256 } = require('js-sha256');

const NONCE_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const NONCE_LENGTH = 32; // API.md accepts 16..64

/** Hex SHA-256 of the body as sent on the wire ('' when there is none). */
function bodyHash(body) {
  return sha256(body == null ? '' : String(body));
}

/** The exact string that is signed; the trailing newline is part of it. */
function canonicalString({ method, pathWithQuery, timestamp, nonce, body }) {
  return [String(method).toUpperCase(), pathWithQuery, String(timestamp), nonce, bodyHash(body)].join('\n') + '\n';
}

function sign(signKey, parts) {
  return sha256.hmac(signKey, canonicalString(parts));
}

/**
 * A nonce from `randomInt(n)` (0 <= x < n). The caller passes a random source so the module
 * needs no platform API; the mini-program passes Math.random-based or wx.getRandomValues-based one.
 */
function makeNonce(randomInt = (n) => Math.floor(Math.random() * n), length = NONCE_LENGTH) {
  let out = '';
  for (let i = 0; i < length; i += 1) out += NONCE_ALPHABET[randomInt(NONCE_ALPHABET.length)];
  return out;
}

/** Headers for one signed request; call again for every retry (a nonce is single-use). */
function signatureHeaders(signKey, { method, pathWithQuery, body, nowMs = Date.now(), randomInt }) {
  const timestamp = Math.floor(nowMs / 1000);
  const nonce = makeNonce(randomInt);
  return {
    'X-Timestamp': String(timestamp),
    'X-Nonce': nonce,
    'X-Signature': sign(signKey, { method, pathWithQuery, timestamp, nonce, body }),
  };
}

module.exports = { bodyHash, canonicalString, sign, makeNonce, signatureHeaders, NONCE_LENGTH };
