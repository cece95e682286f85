#!/usr/bin/env node
// `npm run bench -- agent`: an enrolled agent (agent/dist) with BlazeFace cached in its model store and
// loaded into an onnxruntime session, idle, against a bare Node process holding only an onnxruntime
// session of the same model. Both run as child processes, one after the other, in one run.
// Prints {"rss_overhead_mb", "first_inference_ms", ...}: first_inference_ms is from process start to
// the first inference of the agent (model re-verified from the store, loaded, run once).
'use strict';

const { fork } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout } = require('node:timers');

const root = path.resolve(__dirname, '..', '..');
const IDLE_MS = Number(process.argv[2] ?? 3000);

const AGENT_CHILD = `
const { performance } = require('node:perf_hooks');
const ort = require('onnxruntime-node');
const { Agent } = require(${JSON.stringify(path.join(root, 'agent', 'dist', 'agent.js'))});
const { agentConfigSchema } = require(${JSON.stringify(path.join(root, 'agent', 'dist', 'core', 'config.js'))});
const sessions = [];
let first;
const host = {
  async apply(_pipelines, models) {
    for (const m of models.values()) {
      const s = await ort.InferenceSession.create(m.bundle.model, { intraOpNumThreads: 1, logSeverityLevel: 3 });
      const meta = s.inputMetadata[0];
      const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
      await s.run({ [meta.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
      sessions.push(s);
      if (first === undefined) { first = performance.now(); process.send({ first }); }
    }
  },
  async restart() { return false; },
  async stop() {},
  stats() { return []; },
};
const config = agentConfigSchema.parse({ stateDir: process.env.BENCH_STATE, telemetry: { intervalS: 3600 }, homeAssistant: { enabled: false } });
const agent = new Agent(config, { pipelineHost: () => host, env: {} });
agent.start().catch((err) => { console.error(err); process.exit(1); });
process.on('message', async (m) => {
  if (m === 'rss') { global.gc?.(); process.send({ rss: process.memoryUsage.rss() }); }
  if (m === 'stop') { await agent.stop(); process.exit(0); }
});
`;

const BARE_CHILD = `
const { performance } = require('node:perf_hooks');
const ort = require('onnxruntime-node');
(async () => {
  const s = await ort.InferenceSession.create(process.env.BENCH_MODEL, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const meta = s.inputMetadata[0];
  const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  await s.run({ [meta.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
  process.send({ first: performance.now() });
  global.keep = s;
})();
process.on('message', (m) => {
  if (m === 'rss') { global.gc?.(); process.send({ rss: process.memoryUsage.rss() }); }
  if (m === 'stop') process.exit(0);
});
`;

/** An enrolled agent's state folder with the model installed, as after a completed update. */
function prepareState(modelFile) {
  const { buildBundle } = require(path.join(root, 'agent', 'dist', 'core', 'bundle.js'));
  const { loadOrCreateKey } = require(path.join(root, 'agent', 'dist', 'core', 'identity', 'keys.js'));
  const { agentPaths } = require(path.join(root, 'agent', 'dist', 'paths.js'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-agent-'));
  const p = agentPaths(dir);
  loadOrCreateKey(p.identityKey);
  const tar = buildBundle([
    ['model.onnx', fs.readFileSync(modelFile)],
    ['spec.json', Buffer.from('{}')],
    ['labels.txt', Buffer.from('face\n')],
  ]);
  const sha256 = crypto.createHash('sha256').update(tar).digest('hex');
  fs.mkdirSync(path.join(p.modelsDir, 'blazeface', 'versions'), { recursive: true });
  fs.writeFileSync(path.join(p.modelsDir, 'blazeface', 'versions', sha256), tar);
  const ref = { sha256, version: '1', securityVersion: 0 };
  fs.writeFileSync(
    path.join(p.modelsDir, 'blazeface', 'pointers.json'),
    JSON.stringify({ current: ref, securityVersion: 0 }),
  );
  // Nothing listens on port 9: the agent stays offline and idle (reconnect backoff), as in a network outage.
  fs.writeFileSync(
    p.credentials,
    JSON.stringify({
      deviceId: 'bench-device',
      controllerUrl: 'http://127.0.0.1:9',
      deviceToken: 'pdt_bench',
      mqtt: {
        url: 'mqtt://127.0.0.1:9',
        username: 'bench-device',
        password: 'x',
        clientId: 'bench-device',
        topicPrefix: 'perch',
      },
    }),
  );
  const desired = {
    v: 1,
    rev: 1,
    ts: Date.now(),
    pipelines: [],
    models: [
      {
        name: 'blazeface',
        version: '1',
        target: 'models/blazeface/1/bundle.tar',
        sha256,
        length: tar.length,
        securityVersion: 0,
      },
    ],
  };
  fs.writeFileSync(p.desiredCache, JSON.stringify(desired));
  return dir;
}

function runChild(source, env) {
  return new Promise((resolve, reject) => {
    const child = fork('-e', [source], {
      execArgv: ['--expose-gc', '-e', source],
      env: { ...process.env, PERCH_LOG_SILENT: '1', ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      cwd: root,
    });
    const out = {};
    child.on('message', (m) => {
      if (m.first !== undefined) {
        out.first = m.first;
        setTimeout(() => child.send('rss'), IDLE_MS);
      }
      if (m.rss !== undefined) {
        out.rss = m.rss;
        child.send('stop');
      }
    });
    child.on('exit', (code) => (out.rss ? resolve(out) : reject(new Error(`child exited ${code}`))));
  });
}

(async () => {
  const { ensureFixtures } = require(path.join(root, 'scripts', 'fixtures'));
  const model = ensureFixtures()['blazeface.onnx'];
  const state = prepareState(model);
  try {
    const bare = await runChild(BARE_CHILD, { BENCH_MODEL: model });
    const agent = await runChild(AGENT_CHILD, { BENCH_STATE: state });
    const mb = (b) => Math.round((b / 2 ** 20) * 10) / 10;
    console.log(
      JSON.stringify({
        rss_overhead_mb: mb(agent.rss - bare.rss),
        first_inference_ms: Math.round(agent.first),
        agent_rss_mb: mb(agent.rss),
        bare_rss_mb: mb(bare.rss),
        bare_first_inference_ms: Math.round(bare.first),
        idle_ms: IDLE_MS,
      }),
    );
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
