const { getServices } = require('./services/index');

App({
  onLaunch() {
    // Builds the request layer and loads any stored session before the first page asks.
    getServices();
  },
});
