// jest's `testTimeout` is a global option: set inside a project it is silently ignored and every test
// gets 5 s. Each project instead names its timeout in `globals.PERCH_TEST_TIMEOUT_MS` and this file,
// run before each test file of that project, applies it. A file's own jest.setTimeout still wins.
'use strict';

/* global jest -- provided by jest in setupFilesAfterEnv */

if (typeof globalThis.PERCH_TEST_TIMEOUT_MS === 'number') jest.setTimeout(globalThis.PERCH_TEST_TIMEOUT_MS);
