// App-wide state: who is logged in, their points balance and their merchants. Pages bind the
// slices they show with utils/store.bind and unbind on unload.
const { createStore } = require('../utils/store');

function createAppStore() {
  return createStore((set) => ({
    loggedIn: false,
    user: null,
    balance: null,
    merchants: null,
    setBalance: (balance) => set({ balance }),
    setMerchants: (merchants) => set({ merchants }),
  }));
}

module.exports = { createAppStore };
