import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, PerchError, systemClock, type Logger } from '@perch/shared';
import { controllerConfigSchema, startController, type RunningController } from '@perch/controller';
import { agentPaths } from '@perch/agent';
import { AdminApi } from './api';
import { DemoFeeder } from './demo-feeder';
import { resolveDemoSource } from './demo-source';
import { choosePort } from './ports';

export const DEMO_MODEL = { name: 'faces', version: '1.0.0' } as const;
export const DEMO_DEVICE = 'demo-device';
export const DEMO_PIPELINE = 'demo';

export interface EmbeddedOptions {
  env?: NodeJS.ProcessEnv;
  /** The repository root (where `scripts/fixtures.js`, `deploy/demo` and the built agent are). */
  root: string;
  /** Progress lines for the person at the terminal. */
  say?: (line: string) => void;
  logger?: Logger;
  /** Aborted when the person stops the program during startup: what was started is stopped again. */
  signal?: AbortSignal;
}

export interface RunningEmbedded {
  home: string;
  apiUrl: string;
  mqttUrl: string;
  adminTokenFile: string;
  adminToken: string;
  deviceId: string;
  agentLog: string;
  stop(): Promise<void>;
}

interface DeviceRow {
  id: string;
  tags: string[];
}

function sampleFacePhotos(root: string): string[] {
  const demo = path.join(
    path.dirname(
      require.resolve('@vladmandic/face-api/package.json', { paths: [root, path.join(root, 'agent')] }),
    ),
    'demo',
  );
  return fs
    .readdirSync(demo)
    .filter((f) => /^sample\d+\.jpg$/.test(f))
    .sort()
    .map((f) => path.join(demo, f));
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  exited?: () => string | undefined,
  signal?: AbortSignal,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw new Error(`stopped while waiting for ${what}`);
    const value = await check();
    if (value !== undefined) return value;
    const dead = exited?.();
    if (dead) throw new PerchError('E_INTERNAL', `${what}: ${dead}`);
    if (Date.now() > deadline)
      throw new PerchError('E_INTERNAL', `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Brings up the single-machine Perch: the controller (embedded broker, SQLite, artifacts) in this
 * process, one agent as a child process with its own state folder (enrolled on first start, reused
 * later), the demo bundle uploaded and assigned, and a demo pipeline fed with photographs.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<RunningEmbedded> {
  const env = options.env ?? process.env;
  const say = options.say ?? (() => undefined);
  const logger = options.logger ?? createLogger({ namespace: 'embedded', level: 'warn' });
  const home = path.resolve(env.PERCH_HOME || path.join(options.root, '.perch'));
  const controllerHome = path.join(home, 'controller');
  const agentState = path.join(home, 'agent');
  const framesDir = path.join(home, 'demo-frames');
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });

  const demo = resolveDemoSource(env.PERCH_DEMO_SOURCE, framesDir, () => sampleFacePhotos(options.root));
  const http = await choosePort('PERCH_HTTP_PORT', env, 8080);
  const mqtt = await choosePort('PERCH_MQTT_PORT', env, 1883);
  if (http.fallbackFrom)
    say(
      `port ${http.fallbackFrom} is in use: the API listens on ${http.port} (set PERCH_HTTP_PORT to choose)`,
    );
  if (mqtt.fallbackFrom)
    say(
      `port ${mqtt.fallbackFrom} is in use: the MQTT broker listens on ${mqtt.port} (set PERCH_MQTT_PORT to choose)`,
    );

  const config = controllerConfigSchema.parse({
    home: controllerHome,
    logLevel: 'warn',
    http: { host: '127.0.0.1', port: http.port },
    mqtt: { mode: 'embedded', host: '127.0.0.1', port: mqtt.port },
    limits: {},
    retention: {},
    tuf: {},
  });
  const ctl: RunningController = await startController(config, { logger });
  const stops: Array<() => Promise<void>> = [() => ctl.stop()];
  let agent: ChildProcess | undefined;
  let feeder: DemoFeeder | undefined;
  const stop = async () => {
    feeder?.stop();
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        logger.error('stop failed', { err: String(err) });
      }
    }
  };

  try {
    const adminTokenFile = path.join(controllerHome, 'admin-token');
    const adminToken = fs.readFileSync(adminTokenFile, 'utf8').trim();
    const api = new AdminApi(ctl.url, adminToken);

    // The demo bundle: BlazeFace from the model fixtures, with the spec and labels in deploy/demo.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ensureFixtures } = require(path.join(options.root, 'scripts', 'fixtures.js')) as {
      ensureFixtures: () => Record<string, string>;
    };
    const fixtures = ensureFixtures();
    const uploaded = await api.ensureBundle(DEMO_MODEL.name, DEMO_MODEL.version, {
      model: fixtures['blazeface.onnx']!,
      spec: path.join(options.root, 'deploy', 'demo', 'blazeface', 'spec.json'),
      labels: path.join(options.root, 'deploy', 'demo', 'blazeface', 'labels.txt'),
    });
    if (uploaded) say(`uploaded the demo model ${DEMO_MODEL.name}@${DEMO_MODEL.version} (BlazeFace)`);

    // The agent: enrolled once; its state folder keeps the identity for later starts.
    const enrolled = fs.existsSync(agentPaths(agentState).credentials);
    const agentEnv: NodeJS.ProcessEnv = {
      ...env,
      PERCH_STATE_DIR: agentState,
      PERCH_CONTROLLER_URL: ctl.url,
      PERCH_DEVICE_NAME: DEMO_DEVICE,
      PERCH_TELEMETRY_INTERVAL_S: env.PERCH_TELEMETRY_INTERVAL_S ?? '10',
    };
    if (!enrolled) {
      const t = await api.ok<{ token: string }>('POST', '/enroll-tokens', {
        name: 'npm start',
        ttlSeconds: 600,
        maxUses: 1,
        tags: ['demo'],
      });
      agentEnv.PERCH_ENROLL_TOKEN = t.token;
    }
    // The agent's own config file: its policy for pipelines from the desired state (remotePipelines).
    const agentConfig = path.join(home, 'agent.json');
    fs.writeFileSync(agentConfig, JSON.stringify({ remotePipelines: demo.remotePipelines ?? {} }, null, 2));
    const agentLog = path.join(home, 'agent.log');
    const log = fs.openSync(agentLog, 'a');
    const agentBin = path.join(options.root, 'agent', 'dist', 'cli', 'perch-agent.js');
    const child = spawn(process.execPath, [agentBin, '--config', agentConfig], {
      env: agentEnv,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    agent = child;
    let exitNote: string | undefined;
    child.once('exit', (code, signal) => {
      exitNote = `the agent exited (${signal ?? code}); see ${agentLog}`;
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const hard = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => {
            clearTimeout(hard);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    say(
      enrolled
        ? 'started the local agent (already enrolled)'
        : 'started the local agent; it enrolls with a one-time token',
    );

    const device = await waitFor(
      'the agent to enroll',
      60_000,
      async () => {
        const { devices } = await api.ok<{ devices: DeviceRow[] }>('GET', '/devices?tag=demo');
        return devices.find((d) => d.id === DEMO_DEVICE) ?? devices[0];
      },
      () => exitNote,
      options.signal,
    );

    // Desired state: the demo model and one pipeline on the demo source.
    const pipeline = {
      id: DEMO_PIPELINE,
      model: DEMO_MODEL.name,
      source: demo.source,
      fps: 2,
      rules: { labels: ['face'], minScore: 0.6, holdOffMs: 3000 },
      outputs: { events: true, snapshots: true },
    };
    const current = await api.ok<{
      desired?: { models?: Array<{ name: string; version: string }>; pipelines?: unknown[] } | null;
    }>('GET', `/devices/${device.id}`);
    const want = { models: [{ name: DEMO_MODEL.name, version: DEMO_MODEL.version }], pipelines: [pipeline] };
    const have = {
      models: (current.desired?.models ?? []).map((m) => ({ name: m.name, version: m.version })),
      pipelines: current.desired?.pipelines ?? [],
    };
    if (JSON.stringify(have) !== JSON.stringify(want)) {
      await api.ok('PUT', `/devices/${device.id}/desired`, want);
      say(
        `assigned ${DEMO_MODEL.name}@${DEMO_MODEL.version} and the "${DEMO_PIPELINE}" pipeline to ${device.id}`,
      );
    }

    if (demo.feed) {
      feeder = new DemoFeeder(demo.feed, framesDir, systemClock, 2000);
      feeder.start();
    }
    say(`demo source: ${demo.describe}`);

    return {
      home,
      apiUrl: ctl.url,
      mqttUrl: `mqtt://127.0.0.1:${ctl.mqttPort}`,
      adminTokenFile,
      adminToken,
      deviceId: device.id,
      agentLog,
      stop,
    };
  } catch (err) {
    await stop();
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    throw err;
  }
}
