// The fleet end to end: the controller on an external Mosquitto (dynamic security), three real agent
// processes with onnxruntime and BlazeFace, photographs of faces, and an operator who only uses perchctl
// and the HTTP API. Then one device is revoked while the other two carry on.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { systemClock } from '@perch/shared';
import { DemoFeeder } from '@perch/embedded';
import { tempDir } from '../helpers/tmp';
import { waitFor } from '../helpers/wait';
import { connectDevice, startHarness, type Enrolled, type Harness } from '../integration/controller/harness';
import {
  AGENT_BIN,
  facePhotos,
  http,
  perchctl,
  perchctlEnv,
  perchctlJson,
  Processes,
  requireBuilt,
  writeBlazefaceBundle,
  type Proc,
  type StoredEvent,
} from './helpers';

const TAG = 'e2e-fleet';
const NAMES = ['e2e-cam-a', 'e2e-cam-b', 'e2e-cam-c'] as const;
const PIPELINE = 'front-door';

interface DeviceDetail {
  id: string;
  online: boolean;
  tags: string[];
  reported?: {
    models?: Array<{ name: string; version: string; state: string }>;
    pipelines?: Array<{ id: string; state: string }>;
  } | null;
  activeModels?: Array<{ name: string; version: string }>;
}

interface Credentials {
  deviceId: string;
  deviceToken: string;
  mqtt: Enrolled['mqtt'];
}

let h: Harness;
let tmp: ReturnType<typeof tempDir>;
let env: NodeJS.ProcessEnv;
let framesDir: string;
let feeder: DemoFeeder | undefined;
const procs = new Processes();
const agents = new Map<string, { proc: Proc; stateDir: string }>();

beforeAll(async () => {
  requireBuilt();
  h = await startHarness({ mode: 'mosquitto' });
  tmp = tempDir('perch-e2e-fleet-');
  env = perchctlEnv(path.join(tmp.dir, 'operator'));
  framesDir = path.join(tmp.dir, 'frames');
  // A "camera" that drops the next photograph into the watched folder every 2 s; the three agents all
  // watch it. Few frames, so that three onnxruntime processes stay light on two cores.
  feeder = new DemoFeeder(facePhotos(), framesDir, systemClock, 2000);
  feeder.start();
});

afterAll(async () => {
  feeder?.stop();
  await procs.stopAll();
  await h?.close();
  tmp?.cleanup();
});

/** Wraps a wait so that a timeout shows what the agents and the broker said. */
async function waitOrDump<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs: number) {
  try {
    return await waitFor(check, { what, timeoutMs, intervalMs: 1000 });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}\n${procs.dump()}\n----- mosquitto\n${h.mosquitto?.output().slice(-3000)}`,
      { cause: err },
    );
  }
}

const show = (id: string) => perchctlJson<DeviceDetail>(env, 'devices', 'show', id);
const eventsOf = async (id: string, since?: number) =>
  (
    await perchctlJson<{ events: StoredEvent[] }>(
      env,
      'events',
      'ls',
      '--device',
      id,
      '--limit',
      '1000',
      ...(since !== undefined ? ['--since', String(since)] : []),
    )
  ).events;

describe('a fleet of three agents on an external broker, driven with perchctl', () => {
  it('logs in, and three agents enroll with one tagged token', async () => {
    const login = await perchctl(env, 'login', '--url', h.ctl.url, '--token', h.adminToken);
    expect(login).toMatchObject({ code: 0 });
    expect(fs.existsSync(path.join(env.XDG_CONFIG_HOME!, 'perch', 'perchctl.json'))).toBe(true);

    const token = await perchctlJson<{ token: string; tags: string[]; maxUses: number }>(
      env,
      'enroll-tokens',
      'create',
      '--ttl',
      '10m',
      '--max-uses',
      '3',
      '--tags',
      TAG,
    );
    expect(token).toMatchObject({ tags: [TAG], maxUses: 3 });

    for (const name of NAMES) {
      const stateDir = path.join(tmp.dir, 'agents', name);
      const proc = procs.start(name, [AGENT_BIN], {
        env: {
          PATH: process.env.PATH,
          HOME: stateDir,
          PERCH_STATE_DIR: stateDir,
          PERCH_CONTROLLER_URL: h.ctl.url,
          PERCH_ENROLL_TOKEN: token.token,
          PERCH_DEVICE_NAME: name,
          PERCH_TELEMETRY_INTERVAL_S: '2',
          PERCH_LOG_LEVEL: 'info',
        },
      });
      agents.set(name, { proc, stateDir });
    }

    const listed = await waitOrDump(
      'three enrolled devices with the tag',
      async () => {
        const { devices } = await perchctlJson<{ devices: Array<{ id: string; tags: string[] }> }>(
          env,
          'devices',
          'ls',
          '--tag',
          TAG,
        );
        return devices.length === 3 ? devices : undefined;
      },
      60_000,
    );
    expect(listed.map((d) => d.id).sort()).toEqual([...NAMES]);
    for (const d of listed) expect(d.tags).toEqual([TAG]);
    // Each agent keeps its own identity, private key 0600.
    for (const { stateDir } of agents.values()) {
      const creds = JSON.parse(
        fs.readFileSync(path.join(stateDir, 'identity', 'credentials.json'), 'utf8'),
      ) as Credentials;
      expect(NAMES).toContain(creds.deviceId);
    }
  });

  it('pushes the BlazeFace bundle and assigns it with a pipeline to the tag; all three report it active', async () => {
    const bundle = writeBlazefaceBundle(path.join(tmp.dir, 'bundle'));
    const pushed = await perchctl(
      env,
      'models',
      'push',
      bundle,
      '--name',
      'faces',
      '--version',
      '1.0.0',
      '--no-progress',
    );
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);

    const pipelinesFile = path.join(tmp.dir, 'pipelines.json');
    fs.writeFileSync(
      pipelinesFile,
      JSON.stringify({
        pipelines: [
          {
            id: PIPELINE,
            model: 'faces',
            source: { kind: 'folder', path: framesDir, rescanMs: 500, stableMs: 100 },
            fps: 1,
            rules: { labels: ['face'], minScore: 0.6, holdOffMs: 3000 },
            outputs: { events: true, snapshots: false },
          },
        ],
      }),
    );
    const assigned = await perchctlJson<{ assigned: Array<{ device: string; published: boolean }> }>(
      env,
      'assign',
      '--tag',
      TAG,
      'faces@1.0.0',
      '--pipelines',
      pipelinesFile,
    );
    expect(assigned.assigned.map((a) => a.device).sort()).toEqual([...NAMES]);
    expect(assigned.assigned.every((a) => a.published)).toBe(true);

    for (const name of NAMES) {
      const d = await waitOrDump(
        `${name} to report faces@1.0.0 active and the pipeline running`,
        async () => {
          const d = await show(name);
          const model = d.reported?.models?.find((m) => m.name === 'faces' && m.version === '1.0.0');
          const pipeline = d.reported?.pipelines?.find((p) => p.id === PIPELINE);
          return model?.state === 'active' && pipeline?.state === 'running' ? d : undefined;
        },
        120_000,
      );
      expect(d.online).toBe(true);
      expect(d.activeModels).toEqual([expect.objectContaining({ name: 'faces', version: '1.0.0' })]);
    }
  });

  it('stores face events from the photographs for every device, queryable with perchctl and the API', async () => {
    for (const name of NAMES) {
      const events = await waitOrDump(
        `face events from ${name}`,
        async () => {
          const e = await eventsOf(name);
          return e.length > 0 ? e : undefined;
        },
        90_000,
      );
      for (const e of events) {
        expect(e).toMatchObject({
          device: name,
          pipeline: PIPELINE,
          label: 'face',
          model: { name: 'faces', version: '1.0.0' },
        });
        expect(e.score).toBeGreaterThanOrEqual(0.6);
      }
      expect(events.some((e) => e.phase === 'start')).toBe(true);
      const viaApi = await http<{ events: StoredEvent[] }>(
        h.ctl.url,
        'GET',
        `/api/v1/events?device=${name}&label=face&limit=1000`,
        h.adminToken,
      );
      expect(viaApi.status).toBe(200);
      expect(viaApi.body.events.length).toBeGreaterThan(0);
      expect(viaApi.body.events.every((e) => e.device === name && e.pipeline === PIPELINE)).toBe(true);
    }
  });

  it('stores the telemetry of every device, queryable with perchctl', async () => {
    for (const name of NAMES) {
      const series = await waitOrDump(
        `telemetry from ${name}`,
        async () => {
          const r = await perchctlJson<{ metric: string; points: Array<{ avg: number; count: number }> }>(
            env,
            'telemetry',
            name,
            '--metric',
            'agent.rss_mb',
            '--since',
            '-1h',
          );
          return r.points.length > 0 ? r : undefined;
        },
        60_000,
      );
      expect(series.metric).toBe('agent.rss_mb');
      // A real process: tens of megabytes resident (onnxruntime alone is more).
      expect(series.points.every((p) => p.avg > 10 && p.count > 0)).toBe(true);
    }
  });

  it('revokes one device: it is cut off within seconds while the other two carry on', async () => {
    const [victim, ...others] = NAMES;
    const agent = agents.get(victim)!;
    const creds = JSON.parse(
      fs.readFileSync(path.join(agent.stateDir, 'identity', 'credentials.json'), 'utf8'),
    ) as Credentials;
    // Before: the device's own API and TUF calls are served.
    expect((await http(h.ctl.url, 'GET', '/api/v1/device/self', creds.deviceToken)).status).toBe(200);
    expect((await http(h.ctl.url, 'GET', '/tuf/metadata/timestamp.json', creds.deviceToken)).status).toBe(
      200,
    );
    const logFrom = agent.proc.output().length;
    const brokerLogFrom = h.mosquitto!.output().length;

    const revoked = await perchctlJson<{ id: string; revokedAt: number }>(env, 'devices', 'revoke', victim);
    expect(revoked.id).toBe(victim);
    const revokedAt = revoked.revokedAt;
    expect(revokedAt).toEqual(expect.any(Number));

    // Its MQTT session is kicked: the agent sees its connection drop and its reconnects refused.
    await waitOrDump(
      `${victim}'s MQTT session to be kicked and its reconnect refused`,
      async () => {
        const log = agent.proc.output().slice(logFrom);
        const refused = log
          .split('\n')
          .some((l) => l.includes('"message":"mqtt error"') && /Not authori[sz]ed/.test(l));
        return log.includes('mqtt reconnect scheduled') && refused;
      },
      30_000,
    );
    // ... and the broker says it was the one that threw the session out.
    expect(h.mosquitto!.output().slice(brokerLogFrom)).toMatch(
      new RegExp(`Client ${victim} (has )?been disconnected by administrative action`),
    );
    await expect(connectDevice({ mqtt: creds.mqtt } as Enrolled)).rejects.toThrow();
    // Its API and TUF calls are refused.
    const self = await http(h.ctl.url, 'GET', '/api/v1/device/self', creds.deviceToken);
    expect(self).toMatchObject({ status: 401, body: { error: { code: 'E_DEVICE_REVOKED' } } });
    const tuf = await http(h.ctl.url, 'GET', '/tuf/metadata/timestamp.json', creds.deviceToken);
    expect(tuf).toMatchObject({ status: 401, body: { error: { code: 'E_DEVICE_REVOKED' } } });
    // The operator sees it among the revoked devices, no longer in the fleet.
    const gone = await perchctlJson<{ devices: Array<{ id: string }> }>(env, 'devices', 'ls', '--revoked');
    expect(gone.devices.map((d) => d.id)).toEqual([victim]);
    const fleet = await perchctlJson<{ devices: Array<{ id: string }> }>(env, 'devices', 'ls', '--tag', TAG);
    expect(fleet.devices.map((d) => d.id).sort()).toEqual([...others]);

    const storedAtKick = (await eventsOf(victim)).map((e) => e.id).sort();

    // The other two carry on: new events from each, detected after the revocation.
    for (const name of others) {
      await waitOrDump(
        `new events from ${name} after the revocation`,
        async () => ((await eventsOf(name, revokedAt + 1)).length >= 2 ? true : undefined),
        60_000,
      );
    }
    // The revoked agent still runs its pipeline and queues what it detects, but nothing reaches the store.
    const queued = await waitOrDump(
      `${victim} to queue events detected after the revocation`,
      () => {
        const db = new Database(path.join(agent.stateDir, 'agent.db'), {
          readonly: true,
          fileMustExist: true,
        });
        try {
          const rows = db
            .prepare<[number], { msg_id: string }>(
              "SELECT msg_id FROM outbox WHERE kind = 'events' AND created_at > ?",
            )
            .all(revokedAt);
          return Promise.resolve(rows.length > 0 ? rows.map((r) => r.msg_id) : undefined);
        } finally {
          db.close();
        }
      },
      60_000,
    );
    const storedNow = await eventsOf(victim);
    expect(storedNow.map((e) => e.id).sort()).toEqual(storedAtKick);
    expect(storedNow.filter((e) => e.ts > revokedAt)).toEqual([]);
    expect(storedNow.filter((e) => queued.includes(e.id))).toEqual([]);
    expect(agent.proc.running()).toBe(true);
    // And the others are still online and active.
    for (const name of others) {
      const d = await show(name);
      expect(d).toMatchObject({ online: true, activeModels: [expect.objectContaining({ name: 'faces' })] });
    }
  });
});
