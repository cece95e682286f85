// Runs once before any jest project: makes the model fixtures available so that `npm test` needs no
// manual step. Idempotent and cheap when the cache is warm.
'use strict';

const { ensureFixtures } = require('../scripts/fixtures');

module.exports = async function globalSetup() {
  ensureFixtures();
};
