// Merchant roles as the server grants them (README.md, "Merchant staff and roles"):
// the owner everything; a manager refunds, payment codes, takings and orders; a cashier
// only today's payments. The server checks every call; this only decides what to show.

const ROLE_TEXT = { owner: '店主', manager: '店长', cashier: '收银员' };

// The staff roles an owner can give, in the order the pickers show them.
const STAFF_ROLES = [
  { role: 'manager', text: '店长', hint: '可退款、管理收款码、查看营业额和全部订单' },
  { role: 'cashier', text: '收银员', hint: '只能查看当天收款' },
];

const TOOLS = {
  owner: ['codes', 'takings', 'settlement', 'orders', 'refund', 'staff'],
  manager: ['codes', 'takings', 'orders', 'refund'],
  cashier: ['today'],
};

function roleText(role) {
  return ROLE_TEXT[role] || '';
}

/** The merchant tools a role gets (an unknown role gets none). */
function toolsFor(role) {
  return TOOLS[role] || [];
}

function can(role, tool) {
  return toolsFor(role).indexOf(tool) >= 0;
}

/** A typed invite code as the owner's screen shows it: upper case, XXXX-XXXX-XXXX. */
function formatCode(typed) {
  const plain = String(typed || '')
    .toUpperCase()
    .replace(/[^0-9A-Z]/g, '')
    .slice(0, 12);
  return plain.replace(/(.{4})(?=.)/g, '$1-');
}

/** Whether a typed code has its 12 characters (the server says whether it is valid). */
function codeComplete(typed) {
  return formatCode(typed).replace(/-/g, '').length === 12;
}

module.exports = { ROLE_TEXT, STAFF_ROLES, roleText, toolsFor, can, formatCode, codeComplete };
