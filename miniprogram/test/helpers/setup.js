// Every test file starts with a fresh fake `wx` and no services; page tests install their own.
const { createFakeWx } = require('./fake-wx');

global.wx = createFakeWx();
global.getCurrentPages = () => [];
