/**
 * @jest-environment node
 */
// The end-to-end scenario over real HTTP against the API.md stand-in in stub-server.js: proves
// the fetch-based wx shim and the scenario work, and that a server checking signatures the way
// API.md says accepts every call the mini-program signs. The real run is pay-flow.e2e.test.js.
const { startStub } = require('./stub-server');
const { runPayFlow } = require('./scenario');

let stub;
beforeAll(async () => {
  stub = await startStub();
});
afterAll(() => stub.close());

test('scenario against the API.md stand-in: merchant made and approved, shopper pays, points shown', async () => {
  const seen = await runPayFlow({ base: stub.url, sandbox: stub.url, amountFen: 1250, admin: { username: 'admin', password: 'stub-admin' } });
  expect(seen.points).toBe(12);
  expect(seen.balance).toBe(12);
});

test('the stand-in refuses a replayed signed request, so the check above means something', async () => {
  const login = await fetch(`${stub.url}/api/auth/wechat-login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"code":"test-replay"}' }).then((r) => r.json());
  const { signatureHeaders } = require('../../src/utils/signature');
  const body = '{"merchant_name":"x"}';
  const headers = Object.assign(
    { Authorization: `Bearer ${login.access_token}`, 'Content-Type': 'application/json' },
    signatureHeaders(login.sign_key, { method: 'POST', pathWithQuery: '/api/merchants', body }),
  );
  expect((await fetch(`${stub.url}/api/merchants`, { method: 'POST', headers, body })).status).toBe(201);
  const again = await fetch(`${stub.url}/api/merchants`, { method: 'POST', headers, body });
  expect(again.status).toBe(401);
  expect((await again.json()).code).toBe('REPLAYED_REQUEST');
  const tampered = Object.assign({}, headers, signatureHeaders(login.sign_key, { method: 'POST', pathWithQuery: '/api/merchants', body }));
  const bad = await fetch(`${stub.url}/api/merchants`, { method: 'POST', headers: tampered, body: '{"merchant_name":"y"}' });
  expect((await bad.json()).code).toBe('SIGNATURE_INVALID');
});
