#!/usr/bin/env node
// `npm run bench -- ingest [devices] [messagesPerDevice] [rounds]`: simulated devices (MQTT clients in a child
// process) publish QoS 1 telemetry through a Mosquitto started here. Phase 1 measures the broker's
// ceiling with a subscriber that only counts; phase 2 the controller's ingest (decode, dedupe, batched
// SQLite writes) over the same broker and devices. Prints one JSON line:
// {"ingest_msgs_per_s", "broker_ceiling_msgs_per_s", "ratio", "lost", ...}.
/* global setTimeout, fetch, __filename */
'use strict';

const { execFileSync, spawn, fork } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const DYNSEC = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

// ---------------------------------------------------------------- publisher child
if (process.argv[2] === '--publisher') {
  const mqtt = require('mqtt');
  let clients = [];
  process.on('message', async (msg) => {
    if (msg.type === 'connect') {
      clients = await Promise.all(
        msg.devices.map(
          (d) =>
            new Promise((resolve, reject) => {
              const c = mqtt.connect(msg.url, {
                username: d.username,
                password: d.password,
                clientId: d.clientId,
                protocolVersion: 4,
                reconnectPeriod: 0,
              });
              c.once('connect', () => resolve({ c, d }));
              c.once('error', reject);
            }),
        ),
      );
      process.send({ type: 'connected' });
    } else if (msg.type === 'go') {
      const started = Date.now();
      await Promise.all(
        clients.map(async ({ c, d }) => {
          const sends = [];
          for (let i = 0; i < msg.count; i++) {
            const payload = JSON.stringify({
              v: 1,
              id: `${msg.run}-${d.clientId}-${i}`,
              ts: Date.now(),
              metrics: { 'system.cpu_percent': i % 100, 'agent.outbox_depth': 0 },
            });
            sends.push(c.publishAsync(d.topic, payload, { qos: 1 }));
          }
          await Promise.all(sends);
        }),
      );
      const cpu = process.cpuUsage();
      process.send({ type: 'done', ms: Date.now() - started, cpuUs: cpu.user + cpu.system });
    } else if (msg.type === 'close') {
      await Promise.all(clients.map(({ c }) => c.endAsync()));
      process.exit(0);
    }
  });
  return;
}

// ---------------------------------------------------------------- parent
const {
  startController,
  controllerConfigSchema,
  enrollChallenge,
  coalesceAcks,
} = require('@perch/controller');
const { createLogger, topics } = require('@perch/shared');
const mqtt = require('mqtt');

const DEVICES = Number(process.argv[2] || 20);
const PER_DEVICE = Number(process.argv[3] || 2000);
const ROUNDS = Number(process.argv[4] || 3);
const TOTAL = DEVICES * PER_DEVICE;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port) {
  for (let i = 0; i < 300; i++) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('mosquitto did not start');
}

async function until(check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

/** CPU time (user + system) of a process in microseconds, from /proc. */
function procCpuUs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
}

function ask(child, msg, reply) {
  return new Promise((resolve, reject) => {
    const on = (m) => {
      if (m.type === reply) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`publisher exited ${code}`)));
    child.send(msg);
  });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-bench-ingest-'));
  let broker;
  let ctl;
  let publisher;
  try {
    const port = await freePort();
    const dynsecFile = path.join(tmp, 'dynsec.json');
    execFileSync('mosquitto_ctrl', ['dynsec', 'init', dynsecFile, 'perch-admin', 'bench-secret'], {
      stdio: 'ignore',
    });
    const conf = path.join(tmp, 'mosquitto.conf');
    fs.writeFileSync(
      conf,
      [
        ...(process.getuid && process.getuid() === 0 ? ['user root'] : []),
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        'persistence false',
        'max_inflight_messages 0',
        'max_queued_messages 100000',
        `plugin ${DYNSEC}`,
        `plugin_opt_config_file ${dynsecFile}`,
        'log_dest none',
        '',
      ].join('\n'),
    );
    broker = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitPort(port);
    const url = `mqtt://127.0.0.1:${port}`;

    const config = controllerConfigSchema.parse({
      home: path.join(tmp, 'controller'),
      http: { host: '127.0.0.1', port: 0 },
      mqtt: { mode: 'mosquitto', url, username: 'perch-admin', password: 'bench-secret' },
      limits: {},
      retention: {},
      tuf: {},
    });
    const logger = createLogger({ namespace: 'bench', silent: true });
    const start = () => startController(config, { logger, cron: false });
    // The controller keeps its broker session over a stop (so a restart loses nothing). Here that
    // would queue the ceiling phase's messages for it and hand them to the next ingest phase: end the
    // session (clean start under its client id, expiry 0) each time the controller is stopped.
    const endControllerSession = async () => {
      const clientId = fs.readFileSync(path.join(config.home, 'mqtt-client-id'), 'utf8').trim();
      const c = await mqtt.connectAsync(url, {
        username: 'perch-admin',
        password: 'bench-secret',
        clientId,
        protocolVersion: 5,
        clean: true,
        properties: { sessionExpiryInterval: 0 },
      });
      await c.endAsync();
    };
    ctl = await start();
    const admin = ctl.adminToken;
    const post = async (p, body, token) => {
      const res = await fetch(`${ctl.url}${p}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
      if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
      return res.json();
    };
    const { token } = await post('/api/v1/enroll-tokens', { maxUses: DEVICES }, admin);
    const devices = [];
    for (let i = 0; i < DEVICES; i++) {
      const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
      const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
      const timestamp = new Date().toISOString();
      const proof = crypto.sign(null, enrollChallenge(token, pem, timestamp), privateKey).toString('base64');
      const r = await post('/api/v1/enroll', { token, publicKey: pem, timestamp, proof, name: `bench-${i}` });
      devices.push({
        username: r.mqtt.username,
        password: r.mqtt.password,
        clientId: r.mqtt.clientId,
        topic: topics.telemetry(r.deviceId),
      });
    }
    // The two phases alternate for ROUNDS rounds and the best of each is kept: other work on the
    // machine (2 cores shared with the broker and the publishers) only ever makes a round slower.
    await ctl.stop();
    ctl = undefined;
    await endControllerSession();
    publisher = fork(__filename, ['--publisher'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await ask(publisher, { type: 'connect', url, devices }, 'connected');
    const ceilingRates = [];
    const ingestRates = [];
    const counterCpu = [];
    const controllerCpu = [];
    const publisherCpu = [];
    const brokerCpu = { ceiling: [], ingest: [] };
    let lost = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Phase 1: broker ceiling. The controller is stopped; a subscriber that only counts takes its place.
      const counter = mqtt.connect(url, {
        username: 'perch-admin',
        password: 'bench-secret',
        clientId: 'bench-counter',
        protocolVersion: 5,
      });
      await new Promise((r, j) => (counter.once('connect', r), counter.once('error', j)));
      // The same acknowledgement batching as the controller's client: both sides differ only in what
      // they do with a message, not in how they talk MQTT.
      coalesceAcks(counter);
      let counted = 0;
      counter.on('message', () => counted++);
      await counter.subscribeAsync(topics.all('telemetry'), { qos: 1 });
      let t0 = Date.now();
      let cpu0 = process.cpuUsage();
      let broker0 = procCpuUs(broker.pid);
      let pub = await ask(publisher, { type: 'go', count: PER_DEVICE, run: `ceiling${round}` }, 'done');
      let pub0 = pub.cpuUs;
      await until(() => counted >= TOTAL, 120_000);
      brokerCpu.ceiling.push((procCpuUs(broker.pid) - broker0) / TOTAL);
      ceilingRates.push((counted / (Date.now() - t0)) * 1000);
      let cpu = process.cpuUsage(cpu0);
      counterCpu.push((cpu.user + cpu.system) / TOTAL);
      await counter.endAsync();

      // Phase 2: the controller ingest, same broker, same devices, new message ids.
      ctl = await start();
      const metrics = ctl.deps.metrics;
      const stored = async () => metrics.total(metrics.ingestMessages);
      t0 = Date.now();
      cpu0 = process.cpuUsage();
      broker0 = procCpuUs(broker.pid);
      pub = await ask(publisher, { type: 'go', count: PER_DEVICE, run: `ingest${round}` }, 'done');
      publisherCpu.push((pub.cpuUs - pub0) / TOTAL);
      await until(async () => (await stored()) >= TOTAL, 120_000);
      brokerCpu.ingest.push((procCpuUs(broker.pid) - broker0) / TOTAL);
      const ms = Date.now() - t0;
      cpu = process.cpuUsage(cpu0);
      controllerCpu.push((cpu.user + cpu.system) / TOTAL);
      await ctl.ingest.flush();
      ingestRates.push(((await stored()) / ms) * 1000);
      const rows = await ctl.deps.store.db
        .selectFrom('telemetry')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      lost = TOTAL * (round + 1) - Number(rows.n);
      // More rows than published: messages from outside this round were counted, and the rate with them.
      if (lost < 0) throw new Error(`E_BENCH_INVALID: ${-lost} more rows stored than published`);
      await ctl.stop();
      ctl = undefined;
      await endControllerSession();
    }
    publisher.send({ type: 'close' });
    await new Promise((r) => publisher.once('exit', r));
    publisher = undefined;
    const ingestRate = Math.max(...ingestRates);
    const ceilingRate = Math.max(...ceilingRates);
    const result = {
      ingest_msgs_per_s: Math.round(ingestRate),
      broker_ceiling_msgs_per_s: Math.round(ceilingRate),
      ratio: Math.round((ingestRate / ceilingRate) * 100) / 100,
      lost,
      devices: DEVICES,
      messages_per_round: TOTAL,
      rounds: ROUNDS,
      ingest_rounds: ingestRates.map(Math.round),
      ceiling_rounds: ceilingRates.map(Math.round),
      // CPU microseconds per message in this process: the counting subscriber vs the controller.
      counter_cpu_us_per_msg: Math.round(Math.min(...counterCpu) * 10) / 10,
      controller_cpu_us_per_msg: Math.round(Math.min(...controllerCpu) * 10) / 10,
      publisher_cpu_us_per_msg: Math.round(Math.min(...publisherCpu) * 10) / 10,
      broker_cpu_us_per_msg: {
        ceiling: Math.round(Math.min(...brokerCpu.ceiling) * 10) / 10,
        ingest: Math.round(Math.min(...brokerCpu.ingest) * 10) / 10,
      },
      qos: 1,
    };
    console.log(JSON.stringify(result));
  } finally {
    if (publisher) publisher.kill('SIGKILL');
    if (ctl) await ctl.stop();
    if (broker) {
      broker.kill('SIGTERM');
      await new Promise((r) => broker.once('exit', r));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
