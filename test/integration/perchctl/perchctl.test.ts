import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { topics } from '@perch/shared';
import { perchctlRunner } from './run';
import { fixturePath, REPO_ROOT } from '../../helpers/fixtures';
import { freePort } from '../../helpers/ports';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { connectDevice, enroll, startHarness, type Enrolled, type Harness } from '../controller/harness';

let h: Harness;
let home: { dir: string; cleanup: () => void };
let env: NodeJS.ProcessEnv;
let bundleDir: string;

const { ctl, json } = perchctlRunner(() => env);

beforeAll(async () => {
  h = await startHarness({ mode: 'embedded' });
  home = tempDir('perchctl-home-');
  env = { PERCHCTL_CONFIG: path.join(home.dir, 'cfg', 'perchctl.json') };
  bundleDir = path.join(home.dir, 'bundle');
  fs.mkdirSync(bundleDir);
  fs.copyFileSync(fixturePath('blazeface.onnx'), path.join(bundleDir, 'model.onnx'));
  fs.copyFileSync(path.join(REPO_ROOT, 'deploy/demo/blazeface/spec.json'), path.join(bundleDir, 'spec.json'));
  fs.copyFileSync(
    path.join(REPO_ROOT, 'deploy/demo/blazeface/labels.txt'),
    path.join(bundleDir, 'labels.txt'),
  );
});

afterAll(async () => {
  await h?.close();
  home?.cleanup();
});

describe('perchctl login', () => {
  it('refuses a bad token with the shared code, a hint and exit code 4, storing nothing', async () => {
    const r = await ctl('login', '--url', h.ctl.url, '--token', 'pat_not-a-real-token');
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/error E_AUTH_INVALID/);
    expect(r.stderr).toMatch(/hint: /);
    expect(fs.existsSync(env.PERCHCTL_CONFIG!)).toBe(false);
  });

  it('reports an unreachable controller with E_CLI_UNREACHABLE and exit code 3', async () => {
    const port = await freePort();
    const r = await ctl('login', '--url', `http://127.0.0.1:${port}`, '--token', h.adminToken);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('E_CLI_UNREACHABLE');
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
  });

  it('stores URL and token with mode 0600 after checking them', async () => {
    const r = await ctl('login', '--url', `${h.ctl.url}/`, '--token', h.adminToken);
    expect(r).toMatchObject({ code: 0 });
    expect(fs.statSync(env.PERCHCTL_CONFIG!).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(env.PERCHCTL_CONFIG!, 'utf8'))).toEqual({
      url: h.ctl.url,
      token: h.adminToken,
    });
    const who = await ctl('whoami');
    expect(who.stdout).toContain(h.ctl.url);
  });

  it('tells a user who never logged in what to do', async () => {
    const saved = env;
    env = { PERCHCTL_CONFIG: path.join(home.dir, 'nobody.json') };
    const r = await ctl('devices', 'ls');
    env = saved;
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('E_CLI_NOT_LOGGED_IN');
    expect(r.stderr).toContain('perchctl login');
  });
});

describe('perchctl commands against a running controller', () => {
  let device: Enrolled;
  let mqttClient: MqttClient;

  afterAll(async () => {
    await mqttClient?.endAsync();
  });

  it('tokens: create, list, revoke', async () => {
    const created = await ctl('tokens', 'create', '--name', 'ci', '--role', 'viewer');
    expect(created.code).toBe(0);
    const id = /id:\s+(\S+)/.exec(created.stdout)?.[1];
    expect(created.stdout).toMatch(/token:\s+\S{16,}/);
    const { tokens } = await json<{ tokens: Array<{ id: string; name: string; revokedAt: number | null }> }>(
      'tokens',
      'ls',
    );
    expect(tokens.find((t) => t.id === id)).toMatchObject({ name: 'ci', revokedAt: null });
    expect((await ctl('tokens', 'revoke', id!)).code).toBe(0);
    const after = await json<{ tokens: Array<{ id: string; revokedAt: number | null }> }>('tokens', 'ls');
    expect(after.tokens.find((t) => t.id === id)?.revokedAt).toEqual(expect.any(Number));
    const bad = await ctl('tokens', 'create', '--name', 'x', '--role', 'root');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('E_CLI_USAGE');
  });

  it('enroll-tokens: create with tags, list, revoke', async () => {
    const created = await json<{ id: string; token: string; tags: string[]; maxUses: number }>(
      'enroll-tokens',
      'create',
      '--ttl',
      '10m',
      '--max-uses',
      '3',
      '--tags',
      'lab,front',
    );
    expect(created).toMatchObject({ tags: ['lab', 'front'], maxUses: 3 });
    const { enrollTokens } = await json<{ enrollTokens: Array<{ id: string; uses: number }> }>(
      'enroll-tokens',
      'ls',
    );
    expect(enrollTokens.map((t) => t.id)).toContain(created.id);
    device = await enroll(h, created.token);
    expect((await ctl('enroll-tokens', 'revoke', created.id)).code).toBe(0);
    expect((await ctl('enroll-tokens', 'create', '--ttl', 'soon')).code).toBe(2);
  });

  it('devices: list, show, tag', async () => {
    const table = await ctl('devices', 'ls');
    expect(table.stdout).toMatch(/^ID\s+ONLINE\s+TAGS/m);
    expect(table.stdout).toContain(device.deviceId);
    const { devices } = await json<{ devices: Array<{ id: string; tags: string[] }> }>(
      'devices',
      'ls',
      '--tag',
      'lab',
    );
    expect(devices.map((d) => d.id)).toEqual([device.deviceId]);
    const tagged = await json<{ tags: string[] }>(
      'devices',
      'tag',
      device.deviceId,
      '--add',
      'canary',
      '--remove',
      'front',
    );
    expect(tagged.tags.sort()).toEqual(['canary', 'lab']);
    const show = await ctl('devices', 'show', device.deviceId);
    expect(show.stdout).toMatch(/tags:\s+canary,lab/);
    const missing = await ctl('devices', 'show', 'no-such-device');
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain('E_NOT_FOUND');
    const invalid = await ctl('devices', 'show', 'Not_An_Id');
    expect(invalid.code).toBe(2);
  });

  it('models: push a real bundle with progress, list, show; a folder without a model is refused', async () => {
    const pushed = await ctl(
      'models',
      'push',
      bundleDir,
      '--name',
      'faces',
      '--version',
      '1.0.0',
      '--no-progress',
    );
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toMatch(/pushed faces@1\.0\.0/);
    // Not a terminal: the progress bar prints one line per quarter, ending at 100%.
    const withProgress = await ctl(
      'models',
      'push',
      bundleDir,
      '--name',
      'faces',
      '--version',
      '1.1.0',
      '--security-version',
      '1',
    );
    expect(withProgress.code).toBe(0);
    const progress = withProgress.stderr.trim().split('\n');
    expect(progress[progress.length - 1]).toMatch(/uploading faces@1\.1\.0 100%/);
    const { models } = await json<{ models: Array<{ name: string; versions: string[] }> }>('models', 'ls');
    expect(models.find((m) => m.name === 'faces')?.versions).toEqual(['1.0.0', '1.1.0']);
    const show = await ctl('models', 'show', 'faces');
    expect(show.stdout).toMatch(/faces \(security version 1\)/);
    const again = await ctl('models', 'push', bundleDir, '--name', 'faces', '--version', '1.0.0');
    expect(again.code).toBe(6);
    const empty = path.join(home.dir, 'empty');
    fs.mkdirSync(empty);
    const noModel = await ctl('models', 'push', empty, '--name', 'faces', '--version', '2');
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toContain('E_CLI_BUNDLE');
  });

  it('assign: to one device, and to every device with a tag, publishing desired state', async () => {
    mqttClient = await connectDevice(device);
    const received: string[] = [];
    mqttClient.on('message', (_t, payload) => received.push(payload.toString()));
    await mqttClient.subscribeAsync(topics.desired(device.deviceId), { qos: 1 });
    expect((await ctl('assign', device.deviceId, 'faces@1.0.0')).code).toBe(0);
    const byTag = await json<{ assigned: Array<{ device: string; rev: number }> }>(
      'assign',
      '--tag',
      'canary',
      'faces@1.1.0',
    );
    expect(byTag.assigned).toEqual([{ device: device.deviceId, rev: 2, published: true }]);
    const last = await waitFor(() => {
      const docs = received.map((r) => JSON.parse(r) as { rev: number; models: Array<{ version: string }> });
      return docs.find((d) => d.rev === 2);
    });
    expect(last.models.map((m) => m.version)).toEqual(['1.1.0']);
    expect((await ctl('assign', 'faces@1.0.0')).code).toBe(2);
    expect((await ctl('assign', device.deviceId, 'faces')).code).toBe(2);
    const unknown = await ctl('assign', device.deviceId, 'faces@9.9.9');
    expect(unknown.code).toBe(5);
  });

  it('events tail follows new events; events ls and telemetry query them', async () => {
    const tail = ctl('events', 'tail', '--json', '--count', '2', '--interval', '100');
    const now = Date.now();
    for (const [i, phase] of (['start', 'end'] as const).entries()) {
      await mqttClient.publishAsync(
        topics.events(device.deviceId),
        JSON.stringify({
          v: 1,
          id: `evt-msg-${now}-${i}`,
          ts: now + i,
          eventId: `evt-${now}`,
          phase,
          pipeline: 'front-door',
          label: 'face',
          score: 0.9,
        }),
        { qos: 1 },
      );
    }
    await mqttClient.publishAsync(
      topics.telemetry(device.deviceId),
      JSON.stringify({ v: 1, id: `tm-${now}-000`, ts: now, metrics: { 'system.cpu_percent': 42 } }),
      { qos: 1 },
    );
    const tailed = await tail;
    expect(tailed.code).toBe(0);
    const lines = tailed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { phase: string; device: string });
    expect(lines.map((l) => [l.device, l.phase])).toEqual([
      [device.deviceId, 'start'],
      [device.deviceId, 'end'],
    ]);
    const listed = await json<{ events: unknown[] }>(
      'events',
      'ls',
      '--device',
      device.deviceId,
      '--label',
      'face',
    );
    expect(listed.events).toHaveLength(2);
    const series = await waitFor(async () => {
      const r = await json<{ points: Array<{ avg: number }> }>(
        'telemetry',
        device.deviceId,
        '--metric',
        'system.cpu_percent',
        '--since',
        '-1h',
      );
      return r.points.length ? r : undefined;
    });
    expect(series.points[0]!.avg).toBe(42);
    expect((await ctl('telemetry', device.deviceId, '--metric', 'Bad Metric')).code).toBe(2);
  });

  it('devices revoke cuts the device off', async () => {
    const closed = new Promise<void>((resolve) => mqttClient.once('close', () => resolve()));
    expect((await ctl('devices', 'revoke', device.deviceId)).code).toBe(0);
    await closed;
    const { devices } = await json<{ devices: Array<{ id: string }> }>('devices', 'ls', '--revoked');
    expect(devices.map((d) => d.id)).toContain(device.deviceId);
  });
});

describe('perchctl binary', () => {
  it('prints usage and exits 2 on an unknown command, 0 on --help', () => {
    const bin = path.join(REPO_ROOT, 'controller/dist/perchctl/main.js');
    if (!fs.existsSync(bin)) throw new Error('build first: npm run build');
    const unknown = spawnSync(process.execPath, [bin, 'fly'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'fly'/);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const c of [
      'login',
      'tokens',
      'enroll-tokens',
      'devices',
      'models',
      'assign',
      'events',
      'telemetry',
    ]) {
      expect(help.stdout).toContain(c);
    }
  });
});
