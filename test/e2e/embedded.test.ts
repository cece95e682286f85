// `npm start`'s embedded setup end to end: the real program (embedded/dist/main.js) with its controller,
// embedded broker and agent child process, on a temporary PERCH_HOME and free ports.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../helpers/ports';
import { tempDir } from '../helpers/tmp';
import { waitFor } from '../helpers/wait';
import {
  EMBEDDED_BIN,
  facePhotos,
  http,
  perchctl,
  perchctlEnv,
  perchctlJson,
  Processes,
  requireBuilt,
  type Proc,
  type StoredEvent,
} from './helpers';

interface DeviceDetail {
  id: string;
  online: boolean;
  enrolledAt: number;
  activeModels?: Array<{ name: string; version: string }>;
}

let tmp: ReturnType<typeof tempDir>;
let home: string;
let httpPort: number;
let mqttPort: number;
let cliEnv: NodeJS.ProcessEnv;
const procs = new Processes();
/** Every agent process the launcher started, so that none outlives the test whatever happens. */
const agentPids = new Set<number>();

beforeAll(async () => {
  requireBuilt();
  tmp = tempDir('perch-e2e-embedded-');
  home = path.join(tmp.dir, 'perch-home');
  httpPort = await freePort();
  mqttPort = await freePort();
  cliEnv = perchctlEnv(path.join(tmp.dir, 'operator'));
});

afterAll(async () => {
  // A launcher killed while starting would leave its agent behind: note those first.
  for (const p of procs.list())
    if (p.running()) for (const pid of agentChildren(p.child.pid!)) agentPids.add(pid);
  await procs.stopAll();
  for (const pid of agentPids) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  tmp?.cleanup();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is gone for our purposes; it only waits for its parent to reap it.
  try {
    return !/^\S+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The launcher's child processes running the agent. */
function agentChildren(parent: number): number[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out
    .split('\n')
    .filter((l) => l.includes('perch-agent'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

function start(extraEnv: NodeJS.ProcessEnv = {}, perchHome = home, name = 'embedded'): Proc {
  return procs.start(name, [EMBEDDED_BIN], {
    env: {
      PATH: process.env.PATH,
      HOME: tmp.dir,
      PERCH_HOME: perchHome,
      PERCH_HTTP_PORT: String(httpPort),
      PERCH_MQTT_PORT: String(mqttPort),
      PERCH_TELEMETRY_INTERVAL_S: '5',
      ...extraEnv,
    },
  });
}

/** Waits for the banner; returns the API base URL it prints. */
async function up(proc: Proc): Promise<string> {
  const url = await waitFor(
    () => {
      if (!proc.running()) throw new Error(`the launcher exited:\n${proc.output()}`);
      return /API\s+(http:\/\/\S+)\/api\/v1\s/.exec(proc.stdout())?.[1];
    },
    { what: 'the launcher to print where the API is', timeoutMs: 120_000, intervalMs: 200 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${proc.output()}`, { cause: err });
  });
  for (const pid of agentChildren(proc.child.pid!)) agentPids.add(pid);
  return url;
}

async function faceEventsSince(apiUrl: string, token: string, since: number): Promise<StoredEvent[]> {
  const res = await http<{ events: StoredEvent[] }>(
    apiUrl,
    'GET',
    `/api/v1/events?label=face&from=${since}&limit=1000`,
    token,
  );
  if (res.status !== 200) throw new Error(`GET /api/v1/events: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.events;
}

async function sigint(proc: Proc): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const agents = agentChildren(proc.child.pid!);
  expect(agents).toHaveLength(1);
  proc.child.kill('SIGINT');
  const exit = await proc.exited;
  // The launcher waits for its agent before exiting: none is left behind.
  for (const pid of agents) {
    await waitFor(() => !alive(pid), { what: `agent ${pid} to be gone`, timeoutMs: 10_000 });
  }
  return exit;
}

describe('npm start (embedded setup)', () => {
  let first: { deviceId: string; enrolledAt: number; adminToken: string };

  it('refuses a taken PERCH_HTTP_PORT with E_PORT_IN_USE, a non-zero exit and no stack trace', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const taken = (server.address() as net.AddressInfo).port;
    try {
      const proc = start({ PERCH_HTTP_PORT: String(taken) }, path.join(tmp.dir, 'other-home'), 'port-taken');
      const exit = await proc.exited;
      expect(exit.code).not.toBe(0);
      expect(exit.code).not.toBeNull();
      const out = proc.output();
      expect(out).toContain('E_PORT_IN_USE');
      expect(out).toContain(`port ${taken} (PERCH_HTTP_PORT) is already in use`);
      expect(out).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('stops its agent too when it gets SIGTERM while still starting', async () => {
    const proc = start(
      { PERCH_HTTP_PORT: String(await freePort()), PERCH_MQTT_PORT: String(await freePort()) },
      path.join(tmp.dir, 'interrupted-home'),
      'interrupted',
    );
    await waitFor(
      () => {
        if (!proc.running()) throw new Error(`the launcher exited:\n${proc.output()}`);
        return proc.stdout().includes('started the local agent');
      },
      { what: 'the launcher to start its agent', timeoutMs: 120_000, intervalMs: 100 },
    );
    const agents = agentChildren(proc.child.pid!);
    for (const pid of agents) agentPids.add(pid);
    expect(agents).toHaveLength(1);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    for (const pid of agents) {
      await waitFor(() => !alive(pid), { what: `agent ${pid} to be gone`, timeoutMs: 10_000 });
    }
  });

  it('comes up on a fresh PERCH_HOME, detects faces in the demo photographs, and works with perchctl', async () => {
    const proc = start();
    const apiUrl = await up(proc);
    expect(apiUrl).toBe(`http://127.0.0.1:${httpPort}`);
    expect(proc.stdout()).toContain('uploaded the demo model faces@1.0.0');
    expect(proc.stdout()).toContain('it enrolls with a one-time token');
    const adminToken = fs.readFileSync(path.join(home, 'controller', 'admin-token'), 'utf8').trim();

    const events = await waitFor(
      async () => {
        const e = await faceEventsSince(apiUrl, adminToken, 0);
        return e.length > 0 ? e : undefined;
      },
      { what: 'face events from the demo photographs', timeoutMs: 90_000, intervalMs: 1000 },
    );
    for (const e of events) {
      expect(e).toMatchObject({
        device: 'demo-device',
        pipeline: 'demo',
        label: 'face',
        model: { name: 'faces', version: '1.0.0' },
      });
      expect(e.score).toBeGreaterThanOrEqual(0.6);
    }

    expect((await perchctl(cliEnv, 'login', '--url', apiUrl, '--token', adminToken)).code).toBe(0);
    const { devices } = await perchctlJson<{ devices: Array<{ id: string; online: boolean }> }>(
      cliEnv,
      'devices',
      'ls',
    );
    expect(devices).toEqual([expect.objectContaining({ id: 'demo-device', online: true })]);
    const table = await perchctl(cliEnv, 'devices', 'ls');
    expect(table.stdout).toMatch(/^demo-device\s+yes\s+demo\s.*faces@1\.0\.0/m);
    const detail = await perchctlJson<DeviceDetail>(cliEnv, 'devices', 'show', 'demo-device');
    expect(detail.activeModels).toEqual([expect.objectContaining({ name: 'faces', version: '1.0.0' })]);
    const listed = await perchctlJson<{ events: StoredEvent[] }>(cliEnv, 'events', 'ls', '--label', 'face');
    expect(listed.events.length).toBeGreaterThan(0);
    first = { deviceId: detail.id, enrolledAt: detail.enrolledAt, adminToken };

    const exit = await sigint(proc);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.stdout()).toContain('stopped.');
  });

  it('a second start on the same PERCH_HOME reuses the state, and a PERCH_DEMO_SOURCE folder feeds it', async () => {
    expect(first).toBeDefined();
    const photos = path.join(tmp.dir, 'my-photos');
    fs.mkdirSync(photos);
    for (const f of facePhotos().slice(0, 3))
      fs.copyFileSync(f, path.join(photos, `copy-${path.basename(f)}`));

    const restartedAt = Date.now();
    const proc = start({ PERCH_DEMO_SOURCE: photos }, home, 'embedded-again');
    const apiUrl = await up(proc);
    const out = proc.stdout();
    expect(out).toContain('started the local agent (already enrolled)');
    expect(out).not.toContain('uploaded the demo model');
    expect(out).toContain(`3 photographs from ${photos}`);
    expect(fs.readFileSync(path.join(home, 'controller', 'admin-token'), 'utf8').trim()).toBe(
      first.adminToken,
    );

    // Same device, no second enrollment, still one token and one model version.
    const { devices } = await perchctlJson<{ devices: DeviceDetail[] }>(cliEnv, 'devices', 'ls');
    expect(devices.map((d) => [d.id, d.enrolledAt])).toEqual([[first.deviceId, first.enrolledAt]]);
    const tokens = await perchctlJson<{ enrollTokens: unknown[] }>(cliEnv, 'enroll-tokens', 'ls');
    expect(tokens.enrollTokens).toHaveLength(1);
    const models = await perchctlJson<{ models: Array<{ name: string; versions: string[] }> }>(
      cliEnv,
      'models',
      'ls',
    );
    expect(models.models).toEqual([expect.objectContaining({ name: 'faces', versions: ['1.0.0'] })]);

    // Events detected after the restart, from the user's photographs.
    const events = await waitFor(
      async () => {
        const e = await faceEventsSince(apiUrl, first.adminToken, restartedAt);
        return e.length > 0 ? e : undefined;
      },
      { what: 'face events after the restart', timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect(events.every((e) => e.device === first.deviceId && e.label === 'face')).toBe(true);

    const exit = await sigint(proc);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
