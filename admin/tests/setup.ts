// jsdom lacks a few browser APIs Element Plus touches while laying out dialogs and inputs.
if (!('ResizeObserver' in globalThis)) {
  class ResizeObserverStub {
    observe() {}
    unobserve() {}
    disconnect() {}
  }
  ;(globalThis as unknown as { ResizeObserver: unknown }).ResizeObserver = ResizeObserverStub
}

// Element Plus validates forms with async-validator, which also prints every failure to the
// console; the tests assert on the messages shown, so the console copy is noise.
import AsyncValidator from 'async-validator'
AsyncValidator.warning = () => {}
