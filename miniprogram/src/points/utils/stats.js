// Shapes GET /api/points/statistics for display. API.md fixes only "per month earned / spent /
// expired, and totals", so `months` or `items` rows and `spent` or `used` are all accepted.
function row(m) {
  return {
    month: m.month || m.period || '',
    earned: m.earned || 0,
    spent: m.spent !== undefined ? m.spent : m.used || 0,
    expired: m.expired || 0,
  };
}

function normalize(stats) {
  const rows = (stats && (stats.months || stats.items || stats.per_month)) || [];
  const months = rows.map(row);
  const t = (stats && stats.totals) || null;
  const totals = t
    ? row(t)
    : months.reduce((acc, m) => ({ earned: acc.earned + m.earned, spent: acc.spent + m.spent, expired: acc.expired + m.expired }), { earned: 0, spent: 0, expired: 0 });
  const peak = months.reduce((max, m) => Math.max(max, m.earned, m.spent, m.expired), 0) || 1;
  months.forEach((m) => {
    m.earnedPct = Math.round((m.earned / peak) * 100);
    m.spentPct = Math.round((m.spent / peak) * 100);
  });
  return { months, totals };
}

module.exports = { normalize };
