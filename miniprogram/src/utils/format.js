// Money is integer fen everywhere; only these functions turn it into text and back.
const dayjs = require('dayjs');

const CST_OFFSET_MS = 8 * 3600 * 1000;

/** 1250 -> "12.50"; negative amounts keep their sign. */
function fenToYuan(fen) {
  const n = Number(fen) || 0;
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(n));
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/**
 * "12.5" -> 1250. Returns null for anything that is not a positive amount with at most two
 * decimals (no floats involved, so 0.1 + 0.2 never matters).
 */
function yuanToFen(text) {
  const s = String(text == null ? '' : text).trim();
  const m = /^(\d{1,9})(?:\.(\d{0,2}))?$/.exec(s);
  if (!m) return null;
  const fen = Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
  return fen > 0 ? fen : null;
}

/** Keeps what a user types in an amount field to digits and at most two decimals. */
function cleanAmountInput(text) {
  let s = String(text || '').replace(/[^\d.]/g, '');
  const dot = s.indexOf('.');
  if (dot >= 0) s = s.slice(0, dot + 1) + s.slice(dot + 1).replace(/\./g, '').slice(0, 2);
  if (s.startsWith('.')) s = `0${s}`;
  s = s.replace(/^0+(?=\d)/, '');
  return s;
}

/** RFC 3339 UTC -> local "YYYY-MM-DD HH:mm" (phones in China run on CST). */
function formatTime(iso, pattern = 'YYYY-MM-DD HH:mm') {
  if (!iso) return '';
  const d = dayjs(iso);
  return d.isValid() ? d.format(pattern) : '';
}

/** The China Standard Time calendar day of a moment, "YYYY-MM-DD" (stats days are CST days). */
function cstDate(ms = Date.now()) {
  return new Date(ms + CST_OFFSET_MS).toISOString().slice(0, 10);
}

/** [from, to] CST dates covering the last `days` days including today. */
function cstRange(days, ms = Date.now()) {
  return { from: cstDate(ms - (days - 1) * 86400000), to: cstDate(ms) };
}

const ORDER_STATUS_TEXT = {
  created: '待支付',
  paying: '支付中',
  paid: '已支付',
  refunding: '退款中',
  partially_refunded: '部分退款',
  refunded: '已退款',
  closed: '已关闭',
};

const MERCHANT_STATUS_TEXT = {
  pending: '审核中',
  approved: '已通过',
  active: '已开通',
  rejected: '未通过',
  disabled: '已停用',
};

const POINTS_KIND_TEXT = {
  award: '消费奖励',
  deduct: '积分使用',
  expire: '积分过期',
  clawback: '退款扣回',
  adjust: '人工调整',
};

function orderStatusText(s) {
  return ORDER_STATUS_TEXT[s] || s || '';
}
function merchantStatusText(s) {
  return MERCHANT_STATUS_TEXT[s] || s || '';
}
function pointsKindText(s) {
  return POINTS_KIND_TEXT[s] || s || '';
}

/** "138****5678" stays; anything else longer than 7 digits is masked the same way. */
function maskPhone(phone) {
  const s = String(phone || '');
  if (s.includes('*') || s.length < 8) return s;
  return `${s.slice(0, 3)}****${s.slice(-4)}`;
}

module.exports = {
  fenToYuan,
  yuanToFen,
  cleanAmountInput,
  formatTime,
  cstDate,
  cstRange,
  orderStatusText,
  merchantStatusText,
  pointsKindText,
  maskPhone,
};
