// Idempotency keys: UUID v4 text from a random byte source (wx.getRandomValues is async and
// not on every base library, so the caller may pass Math.random; the key only has to be unique).
function uuid4(randomByte = () => Math.floor(Math.random() * 256)) {
  const b = [];
  for (let i = 0; i < 16; i += 1) b.push(randomByte() & 0xff);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

module.exports = { uuid4 };
