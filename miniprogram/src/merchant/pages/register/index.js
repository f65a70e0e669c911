const { services, errorText, toast } = require('../../../utils/page');
const { FIELDS, validate } = require('../../utils/register');

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
