#!/usr/bin/env node
// tsc writes the programs named in each workspace's package.json "bin" without the executable bit, so
// `./agent/dist/cli/perch-agent.js` would not run after `npm run build`. This sets it (0755). On
// Windows chmod only toggles read-only, which is harmless. Run after `tsc -b` by the root build.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

function binsOf(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (typeof pkg.bin === 'string') return [path.join(dir, pkg.bin)];
  return Object.values(pkg.bin ?? {}).map((file) => path.join(dir, file));
}

function chmodBins() {
  const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const changed = [];
  for (const ws of root.workspaces ?? []) {
    for (const file of binsOf(path.join(ROOT, ws))) {
      let mode;
      try {
        mode = fs.statSync(file).mode & 0o777;
      } catch {
        continue; // not built (yet); nothing to do
      }
      if ((mode & 0o755) !== 0o755) {
        fs.chmodSync(file, mode | 0o755);
        changed.push(path.relative(ROOT, file));
      }
    }
  }
  return changed;
}

module.exports = { chmodBins };

if (require.main === module) chmodBins();
