const { services, errorText, toast, confirm } = require('../../../utils/page');
const { formatTime } = require('../../../utils/format');
const { STAFF_ROLES, roleText } = require('../../utils/roles');

// The owner's staff page: invite a manager or cashier (the code is shown once, to pass on),
// the staff with their roles (change, remove) and the invites not used yet (revoke).
Component({
  data: {
    merchantId: '',
    roles: STAFF_ROLES,
    loading: true,
    error: '',
    staff: [],
    invites: [],
    created: null,
    busy: false,
  },
  methods: {
    onLoad(query) {
      this.setData({ merchantId: query.id || '' });
      if (query.name) wx.setNavigationBarTitle({ title: `${decodeURIComponent(query.name)} · 员工` });
      this.load();
    },
    onPullDownRefresh() {
      return this.load().then(() => wx.stopPullDownRefresh());
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { api } = services();
        const [staff, invites] = await Promise.all([api.staff.list(this.data.merchantId), api.staff.invites(this.data.merchantId)]);
        this.setData({
          staff: staff.map((s) =>
            Object.assign({}, s, {
              name: s.nickname || `用户 ${String(s.user_id).slice(-6)}`,
              roleText: roleText(s.role),
              otherRole: s.role === 'manager' ? 'cashier' : 'manager',
              otherRoleText: s.role === 'manager' ? '改为收银员' : '改为店长',
              joined: formatTime(s.joined_at, 'YYYY-MM-DD'),
            }),
          ),
          invites: invites.map((i) =>
            Object.assign({}, i, { roleText: roleText(i.role), expires: formatTime(i.expires_at, 'MM-DD HH:mm') }),
          ),
        });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ loading: false });
      }
    },
    async onInvite(e) {
      if (this.data.busy) return;
      const role = e.currentTarget.dataset.role;
      this.setData({ busy: true });
      try {
        const invite = await services().api.staff.invite(this.data.merchantId, role);
        this.setData({
          created: Object.assign({}, invite, { roleText: roleText(invite.role), expires: formatTime(invite.expires_at, 'MM-DD HH:mm') }),
        });
        await this.load();
      } catch (err) {
        toast(errorText(err));
      } finally {
        this.setData({ busy: false });
      }
    },
    onCopy() {
      const created = this.data.created;
      if (!created) return;
      wx.setClipboardData({ data: created.code });
    },
    async onChangeRole(e) {
      const { id, role } = e.currentTarget.dataset;
      try {
        await services().api.staff.changeRole(this.data.merchantId, id, role);
        toast(`已改为${roleText(role)}`);
        await this.load();
      } catch (err) {
        toast(errorText(err));
      }
    },
    async onRemove(e) {
      const { id, name } = e.currentTarget.dataset;
      if (!(await confirm('移除员工', `确定将 ${name} 移出本店？移除后立即不能再退款或管理收款码。`))) return;
      try {
        await services().api.staff.remove(this.data.merchantId, id);
        toast('已移除');
        await this.load();
      } catch (err) {
        toast(errorText(err));
      }
    },
    async onRevoke(e) {
      const id = e.currentTarget.dataset.id;
      if (!(await confirm('撤销邀请', '撤销后该邀请码立即失效。'))) return;
      try {
        await services().api.staff.revokeInvite(this.data.merchantId, id);
        if (this.data.created && this.data.created.id === id) this.setData({ created: null });
        await this.load();
      } catch (err) {
        toast(errorText(err));
      }
    },
  },
});
