#!/usr/bin/env node
// `npm run bench -- <name> [args]` runs test/bench/<name>.js after a build; with no name, every
// benchmark in turn. Each benchmark prints one JSON object on its last stdout line; this runner adds
// machine facts and the date so results can go into docs/BENCHMARKS.md as they are.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const dir = __dirname;
const available = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
const selected = name ? [name] : available;
for (const n of selected) {
  if (!available.includes(n)) {
    console.error(`E_BENCH_UNKNOWN: no benchmark "${n}"; available: ${available.join(', ') || '(none)'}`);
    process.exit(2);
  }
}

const machine = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memory_gb: Math.round(os.totalmem() / 1024 ** 3),
  arch: process.arch,
};

let failed = 0;
for (const n of selected) {
  console.error(`bench ${n}: running`);
  const r = spawnSync(process.execPath, [path.join(dir, `${n}.js`), ...rest], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = (r.stdout || '').trim().split('\n');
  const last = lines[lines.length - 1] || '';
  let result;
  try {
    result = JSON.parse(last);
  } catch {
    result = { error: `no JSON result (exit ${r.status})` };
  }
  if (r.status !== 0) failed++;
  console.log(JSON.stringify({ bench: n, machine, result }));
}
process.exit(failed ? 1 : 0);
