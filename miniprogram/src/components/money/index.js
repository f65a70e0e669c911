const { fenToYuan } = require('../../utils/format');

Component({
  properties: {
    fen: { type: Number, value: 0 },
    size: { type: String, value: 'normal' }, // normal | large
    sign: { type: Boolean, value: false }, // show "+" for positive amounts
  },
  data: { text: '0.00' },
  observers: {
    'fen, sign': function (fen, sign) {
      const text = fenToYuan(fen);
      this.setData({ text: sign && fen > 0 ? `+${text}` : text });
    },
  },
});
