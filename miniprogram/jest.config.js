module.exports = {
  testEnvironment: 'jsdom',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  setupFiles: ['<rootDir>/test/helpers/setup.js'],
  testTimeout: 20000,
  // Page tests load WXML through the official compiler binary; keep to the 2 cores we have.
  maxWorkers: 2,
  // Lists every test by name, so a skipped end-to-end run shows up as skipped with its reason.
  verbose: true,
};
