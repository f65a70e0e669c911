// Merchant staff: joining with an invite code, the owner's staff page, and merchant pages that
// show only what the caller's role allows (a cashier: today's payments).
const { load, render, useFakeWx, flush, text, tap, type } = require('../helpers/load');
const roles = require('../../src/merchant/utils/roles');

const json = (status, data) => ({ status, data });
const fail = (status, code) => json(status, { code, message: code, trace_id: 't' });
// Taps one element of several (a Vant button's inner element, as a finger would).
const tapEl = (el) => {
  (el.querySelector('.van-button') || el).dispatchEvent('tap');
  return flush();
};

describe('roles', () => {
  test('what each role gets', () => {
    expect(roles.toolsFor('owner')).toEqual(['codes', 'takings', 'settlement', 'orders', 'refund', 'staff']);
    expect(roles.can('manager', 'refund')).toBe(true);
    expect(roles.can('manager', 'settlement')).toBe(false);
    expect(roles.can('manager', 'staff')).toBe(false);
    expect(roles.toolsFor('cashier')).toEqual(['today']);
    expect(roles.toolsFor('boss')).toEqual([]);
    expect(roles.roleText('cashier')).toBe('收银员');
  });

  test('a typed code is shown as the owner sees it', () => {
    expect(roles.formatCode('k7qm3xd9pw2h')).toBe('K7QM-3XD9-PW2H');
    expect(roles.formatCode(' k7qm-3xd9 pw2h ')).toBe('K7QM-3XD9-PW2H');
    expect(roles.formatCode('k7qm3')).toBe('K7QM-3');
    expect(roles.codeComplete('k7qm3')).toBe(false);
    expect(roles.codeComplete('K7QM-3XD9-PW2H')).toBe(true);
  });
});

describe('join a merchant', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/join/index');
  });

  test('an incomplete code is not sent', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const page = render(id);
    await type(page, '.join__code', 'k7qm');
    await tap(page, '.join__submit');
    expect(page.data.error).toBe('请输入 12 位邀请码，如 K7QM-3XD9-PW2H');
    expect(fake.calls.request).toHaveLength(0);
  });

  test('redeems the code, signed, and shows the merchant and the role', async () => {
    const fake = useFakeWx({ loggedIn: true });
    let sent;
    fake.routes['POST /api/staff/invites/redeem'] = (req) => {
      sent = { body: JSON.parse(req.data), signed: Boolean(req.header['X-Signature']) };
      return json(200, { merchant_id: 'm1', merchant_name: '老王面馆', role: 'cashier' });
    };
    const page = render(id);
    await type(page, '.join__code', 'k7qm3xd9pw2h');
    expect(page.data.code).toBe('K7QM-3XD9-PW2H');
    await tap(page, '.join__submit');
    await flush();
    expect(sent).toEqual({ body: { code: 'K7QM-3XD9-PW2H' }, signed: true });
    expect(text(page, '.join__merchant')).toBe('已加入 老王面馆');
    expect(text(page, '.join__role')).toBe('你的身份：收银员');
    await tap(page, '.join__open');
    expect(fake.calls.redirectTo).toEqual(['/merchant/pages/status/index']);
  });

  test('a bad code says so, whatever was wrong with it', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['POST /api/staff/invites/redeem'] = () => fail(404, 'INVITE_INVALID');
    const page = render(id);
    await type(page, '.join__code', 'AAAA-BBBB-CCCC');
    await tap(page, '.join__submit');
    await flush();
    expect(text(page, '.join__error')).toBe('邀请码无效、已使用、已撤销或已过期，请向店主索取新的邀请码');
    expect(page.querySelector('.join__merchant')).toBeFalsy();
  });

  test('joining a merchant one already belongs to', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['POST /api/staff/invites/redeem'] = () => fail(409, 'ALREADY_STAFF');
    const page = render(id);
    await type(page, '.join__code', 'AAAA-BBBB-CCCC');
    await tap(page, '.join__submit');
    await flush();
    expect(text(page, '.join__error')).toBe('你已是该商户的店主或员工，无需再次加入');
  });
});

describe('the owner\'s staff page', () => {
  let id;
  beforeAll(() => {
    id = load('merchant/pages/staff/index');
  });

  const world = (fake) => {
    const state = {
      staff: [
        { user_id: 'u-anna', nickname: '安娜', role: 'manager', invited_by: 'u1', joined_at: '2026-12-01T02:00:00Z' },
        { user_id: 'u-bo', nickname: null, role: 'cashier', invited_by: 'u1', joined_at: '2026-12-02T02:00:00Z' },
      ],
      invites: [{ id: 'i-old', role: 'cashier', created_by: 'u1', created_at: '2026-12-07T00:00:00Z', expires_at: '2026-12-10T00:00:00Z' }],
      sent: [],
    };
    fake.routes['GET /api/merchants/m1/staff'] = () => json(200, { items: state.staff.slice() });
    fake.routes['GET /api/merchants/m1/staff/invites'] = () => json(200, { items: state.invites.slice() });
    fake.routes['POST /api/merchants/m1/staff/invites'] = (req) => {
      const body = JSON.parse(req.data);
      state.sent.push(['POST', body, Boolean(req.header['X-Signature'])]);
      const invite = { id: 'i-new', code: 'K7QM-3XD9-PW2H', role: body.role, expires_at: '2026-12-11T00:00:00Z' };
      state.invites.unshift({ id: 'i-new', role: body.role, created_by: 'u1', created_at: '2026-12-08T00:00:00Z', expires_at: invite.expires_at });
      return json(201, invite);
    };
    fake.routes['PATCH /api/merchants/m1/staff/u-anna'] = (req) => {
      const body = JSON.parse(req.data);
      state.sent.push(['PATCH u-anna', body, Boolean(req.header['X-Signature'])]);
      state.staff[0] = Object.assign({}, state.staff[0], { role: body.role });
      return json(200, { user_id: 'u-anna', role: body.role });
    };
    fake.routes['DELETE /api/merchants/m1/staff/u-bo'] = (req) => {
      state.sent.push(['DELETE u-bo', null, Boolean(req.header['X-Signature'])]);
      state.staff = state.staff.filter((s) => s.user_id !== 'u-bo');
      return { status: 204, data: '' };
    };
    fake.routes['DELETE /api/merchants/m1/staff/invites/i-old'] = (req) => {
      state.sent.push(['DELETE i-old', null, Boolean(req.header['X-Signature'])]);
      state.invites = state.invites.filter((i) => i.id !== 'i-old');
      return { status: 204, data: '' };
    };
    return state;
  };

  test('lists staff with their roles and the pending invites', async () => {
    const fake = useFakeWx({ loggedIn: true });
    world(fake);
    const page = render(id);
    page.instance.onLoad({ id: 'm1', name: encodeURIComponent('老王面馆') });
    await flush();
    expect(fake.calls.setNavigationBarTitle).toEqual(['老王面馆 · 员工']);
    const members = page.querySelectorAll('.staff__member');
    expect(members).toHaveLength(2);
    expect(members[0].dom.textContent).toContain('安娜');
    expect(members[0].dom.textContent).toContain('店长');
    expect(members[1].dom.textContent).toContain('用户 u-bo');
    expect(members[1].dom.textContent).toContain('收银员');
    expect(page.querySelectorAll('.staff__pending')).toHaveLength(1);
  });

  test('invites a cashier and shows the code once, to copy and pass on', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const state = world(fake);
    const page = render(id);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    await tap(page, '.staff__invite-cashier');
    await flush(20);
    expect(state.sent).toEqual([['POST', { role: 'cashier' }, true]]);
    expect(text(page, '.staff__code')).toBe('K7QM-3XD9-PW2H');
    expect(page.querySelectorAll('.staff__pending')).toHaveLength(2);
    await tap(page, '.staff__copy');
    expect(fake.calls.setClipboardData).toEqual(['K7QM-3XD9-PW2H']);
  });

  test('changes a role, removes a member after confirming, revokes an invite', async () => {
    const fake = useFakeWx({ loggedIn: true });
    const state = world(fake);
    const page = render(id);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    await tap(page, '.staff__change');
    await flush(20);
    expect(state.sent[0]).toEqual(['PATCH u-anna', { role: 'cashier' }, true]);
    expect(page.querySelectorAll('.staff__member')[0].dom.textContent).toContain('收银员');

    fake.modalAnswer = false;
    await tapEl(page.querySelectorAll('.staff__remove')[1]);
    await flush(20);
    expect(state.sent).toHaveLength(1);
    fake.modalAnswer = true;
    await tapEl(page.querySelectorAll('.staff__remove')[1]);
    await flush(20);
    expect(state.sent[1]).toEqual(['DELETE u-bo', null, true]);
    expect(page.querySelectorAll('.staff__member')).toHaveLength(1);

    await tap(page, '.staff__revoke');
    await flush(20);
    expect(state.sent[2]).toEqual(['DELETE i-old', null, true]);
    expect(page.querySelectorAll('.staff__pending')).toHaveLength(0);
  });

  test('a refusal is shown, not swallowed', async () => {
    const fake = useFakeWx({ loggedIn: true });
    world(fake);
    fake.routes['POST /api/merchants/m1/staff/invites'] = () => fail(409, 'TOO_MANY_INVITES');
    const page = render(id);
    page.instance.onLoad({ id: 'm1' });
    await flush();
    await tap(page, '.staff__invite-manager');
    await flush(20);
    expect(fake.calls.showToast).toContain('待使用的邀请码太多，请先撤销不用的邀请码');
    expect(page.querySelector('.staff__code')).toBeFalsy();
  });
});

describe('merchant pages by role', () => {
  let statusId;
  let ordersId;
  beforeAll(() => {
    statusId = load('merchant/pages/status/index');
    ordersId = load('merchant/pages/orders/index');
  });

  test('each merchant shows the caller\'s role and only its tools', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/me'] = () =>
      json(200, {
        items: [
          { id: 'm1', merchant_name: '自己的店', status: 'approved', role: 'owner' },
          { id: 'm2', merchant_name: '帮忙的店', status: 'approved', role: 'manager' },
          { id: 'm3', merchant_name: '打工的店', status: 'approved', role: 'cashier' },
        ],
        next_cursor: null,
      });
    const page = render(statusId);
    page.instance.onShow();
    await flush();
    const cards = page.querySelectorAll('.status__merchant');
    expect(cards).toHaveLength(3);
    const texts = cards.map((c) => c.dom.textContent);
    expect(texts[0]).toContain('我的身份：店主');
    expect(texts[1]).toContain('我的身份：店长');
    expect(texts[2]).toContain('我的身份：收银员');
    const tools = (t) => ['收款码', '营业额', '结算', '订单', '员工', '今日收款'].filter((w) => t.includes(w));
    expect(tools(texts[0])).toEqual(['收款码', '营业额', '结算', '订单', '员工']);
    expect(tools(texts[1])).toEqual(['收款码', '营业额', '订单']);
    expect(tools(texts[2])).toEqual(['今日收款']);
    expect(page.querySelectorAll('.status__staff')).toHaveLength(1);
    expect(page.querySelectorAll('.status__settlement')).toHaveLength(1);
    expect(page.querySelectorAll('.status__today')).toHaveLength(1);
    await tap(page, '.status__today');
    await tap(page, '.status__staff');
    await tap(page, '.status__join');
    expect(fake.calls.navigateTo).toEqual([
      `/merchant/pages/orders/index?id=m3&name=${encodeURIComponent('打工的店')}&role=cashier`,
      `/merchant/pages/staff/index?id=m1&name=${encodeURIComponent('自己的店')}`,
      '/merchant/pages/join/index',
    ]);
  });

  test('a cashier sees today\'s payments and cannot open a refund', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m3/orders'] = () =>
      json(200, { items: [{ order_no: 'P9', status: 'paid', amount_fen: 800, refunded_fen: 0 }], next_cursor: null });
    const page = render(ordersId);
    page.instance.onLoad({ id: 'm3', role: 'cashier' });
    await flush();
    expect(fake.calls.setNavigationBarTitle).toEqual(['今日收款']);
    expect(text(page, '.morders__today')).toBe('今天（北京时间）的收款');
    expect(page.querySelector('.morders__hint')).toBeFalsy();
    page.querySelectorAll('.morders__item')[0].querySelector('.order-item').dispatchEvent('tap');
    await flush();
    expect(fake.calls.navigateTo).toEqual([]);
  });

  test('a manager opens refunds as the owner does', async () => {
    const fake = useFakeWx({ loggedIn: true });
    fake.routes['GET /api/merchants/m2/orders'] = () =>
      json(200, { items: [{ order_no: 'P8', status: 'paid', amount_fen: 800, refunded_fen: 0 }], next_cursor: null });
    const page = render(ordersId);
    page.instance.onLoad({ id: 'm2', role: 'manager' });
    await flush();
    page.querySelectorAll('.morders__item')[0].querySelector('.order-item').dispatchEvent('tap');
    await flush();
    expect(fake.calls.navigateTo).toEqual(['/merchant/pages/refund/index?id=m2&order_no=P8&amount=800&refunded=0']);
  });
});
