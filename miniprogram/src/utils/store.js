// A store with zustand's vanilla API (createStore -> getState/setState/subscribe). It is the
// same 30 lines zustand/vanilla is; zustand's npm entry pulls in React, which packNpm would
// bundle, so the mini-program keeps this copy instead.
function createStore(initializer) {
  let state;
  const listeners = new Set();
  const setState = (partial, replace) => {
    const next = typeof partial === 'function' ? partial(state) : partial;
    if (Object.is(next, state)) return;
    const previous = state;
    state = replace || typeof next !== 'object' || next === null ? next : Object.assign({}, state, next);
    listeners.forEach((listener) => listener(state, previous));
  };
  const getState = () => state;
  const subscribe = (listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };
  const api = { setState, getState, subscribe };
  state = initializer(setState, getState, api);
  return api;
}

/**
 * Binds a page or component to a store: copies `select(state)` into its data now and on every
 * change, and returns the unsubscribe to call from onUnload/detached.
 */
function bind(ctx, store, select) {
  const apply = (s) => ctx.setData(select(s));
  apply(store.getState());
  return store.subscribe(apply);
}

module.exports = { createStore, bind };
