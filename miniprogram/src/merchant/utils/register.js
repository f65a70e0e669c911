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

module.exports = { FIELDS, validate };
