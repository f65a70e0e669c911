const { load, render, text, tap } = require('../helpers/load');

describe('list-state component', () => {
  let id;
  beforeAll(() => {
    id = load('components/list-state/index');
  });

  test('shows loading while a page is loading', () => {
    const comp = render(id, { loading: true });
    expect(comp.querySelector('.list-state__loading')).toBeTruthy();
  });

  test('shows the error and fires retry when the button is tapped', async () => {
    const comp = render(id, { error: '网络连接失败，请检查网络后重试' });
    expect(text(comp, '.list-state__message')).toBe('网络连接失败，请检查网络后重试');
    const onRetry = jest.fn();
    comp.addEventListener('retry', onRetry);
    await tap(comp, '.list-state__retry');
    expect(onRetry).toHaveBeenCalledTimes(1);
  });

  test('says there is no more once the last page is in', () => {
    const comp = render(id, { finished: true, count: 3 });
    expect(text(comp, '.list-state__end')).toBe('没有更多了');
  });
});
