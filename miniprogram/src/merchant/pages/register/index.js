const { services, errorText, toast } = require('../../../utils/page');

const FIELDS = ['merchant_name', 'contact_name', 'contact_phone', 'business_license', 'address'];

/** Client-side checks that save a round trip; the server still validates everything. */
function validate(form) {
  const errors = {};
  if (!form.merchant_name || form.merchant_name.trim().length < 2) errors.merchant_name = '请填写商户名称（至少 2 个字）';
  if (!form.contact_name || !form.contact_name.trim()) errors.contact_name = '请填写联系人';
  if (!/^1\d{10}$/.test(form.contact_phone || '')) errors.contact_phone = '请填写 11 位手机号';
  if (!/^[0-9A-Z]{15,18}$/.test(String(form.business_license || '').toUpperCase())) errors.business_license = '请填写 15 或 18 位营业执照号';
  if (!form.address || form.address.trim().length < 5) errors.address = '请填写经营地址';
  return errors;
}

Component({
  data: {
    form: { merchant_name: '', contact_name: '', contact_phone: '', business_license: '', address: '' },
    errors: {},
    submitting: false,
    error: '',
  },
  methods: {
    onInput(e) {
      const field = e.currentTarget.dataset.field;
      const value = e.detail && e.detail.value !== undefined ? e.detail.value : e.detail;
      this.setData({ [`form.${field}`]: value, [`errors.${field}`]: '' });
    },
    async onSubmit() {
      if (this.data.submitting) return;
      const form = Object.assign({}, this.data.form);
      FIELDS.forEach((f) => {
        form[f] = String(form[f] || '').trim();
      });
      form.business_license = form.business_license.toUpperCase();
      const errors = validate(form);
      if (Object.keys(errors).length) {
        this.setData({ errors });
        return;
      }
      this.setData({ submitting: true, error: '' });
      try {
        await services().api.merchants.register(form);
        toast('已提交，等待审核');
        wx.redirectTo({ url: '/merchant/pages/status/index' });
      } catch (e) {
        this.setData({ error: errorText(e) });
      } finally {
        this.setData({ submitting: false });
      }
    },
  },
});

module.exports = { validate };
