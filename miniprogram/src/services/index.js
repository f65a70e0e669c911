// The app's single set of services, made on first use from the global `wx`.
const env = require('../config/env');
const { createAppStore } = require('../store/index');
const { createSession } = require('./session');
const { createClient } = require('./request');
const { createApi } = require('./api');

let services = null;

/** "/route?query" of a page on the stack, counted from the top (0 = the current page). */
function pageUrl(fromTop = 0) {
  const pages = typeof getCurrentPages === 'function' ? getCurrentPages() : [];
  const page = pages[pages.length - 1 - fromTop];
  if (!page || !page.route) return '';
  const q = Object.keys(page.options || {})
    .map((k) => `${k}=${encodeURIComponent(page.options[k])}`)
    .join('&');
  return `/${page.route}${q ? `?${q}` : ''}`;
}

function currentPageUrl() {
  return pageUrl(0);
}

/** Sends the user to the login page once (several failing calls must not stack login pages). */
function loginNavigator(wxApi) {
  let shownAt = 0;
  return () => {
    const t = Date.now();
    if (t - shownAt < 2000) return;
    const here = currentPageUrl();
    if (here.startsWith('/pages/login/index')) return;
    shownAt = t;
    wxApi.navigateTo({ url: `/pages/login/index${here ? `?redirect=${encodeURIComponent(here)}` : ''}` });
  };
}

function createServices(wxApi, overrides = {}) {
  const store = createAppStore();
  const session = createSession({ storage: wxApi, store });
  const client = createClient(
    Object.assign(
      {
        wx: wxApi,
        baseUrl: () => env.baseUrl(wxApi),
        session,
        onAuthLost: loginNavigator(wxApi),
      },
      overrides,
    ),
  );
  const api = createApi(client, session);
  session.publish();
  return { store, session, client, api, wx: wxApi };
}

function getServices() {
  if (!services) services = createServices(wx); // eslint-disable-line no-undef
  return services;
}

/** Tests replace the services (e.g. with a fake wx); the app never calls this. */
function setServices(next) {
  services = next;
}

module.exports = { getServices, setServices, createServices, currentPageUrl, pageUrl };
