import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { SensorWindow } from '../../../agent/src/pipeline/types';
import { TestMosquitto } from '../../helpers/mosquitto';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Started } from './helpers';

jest.setTimeout(60_000);

const started = new Started();
let tmp: ReturnType<typeof tempDir>;

beforeEach(() => {
  tmp = tempDir('perch-sensor-');
});

afterEach(async () => {
  await started.stopAll();
  tmp.cleanup();
});

const values = (items: SensorWindow[]) => items.map((w) => Array.from(w.values));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('sensor-command source', () => {
  it("windows a command's stdout, counts a bad line with a code and kills the command on stop", async () => {
    // Prints 1..8 with one bad line in between, then stays alive like a real sensor daemon.
    const script = [
      "const lines = ['1', '2', 'oops', '3', '4', '{\"bad\": true}', '5', '6', '7', '8'];",
      'let i = 0;',
      "const t = setInterval(() => { if (i < lines.length) process.stdout.write(lines[i++] + '\\n'); }, 5);",
    ].join('\n');
    const { source, items } = await started.start<SensorWindow>({
      kind: 'sensor-command',
      command: [process.execPath, '-e', script],
      window: 4,
    });
    await waitFor(() => items.length >= 2, { what: 'two windows' });
    expect(values(items)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(items[0]!.shape).toEqual([4, 1]);
    expect(source.stats().errors).toEqual({ E_SOURCE_SENSOR_PARSE: 2 });
    expect(source.health().lastError?.code).toBe('E_SOURCE_SENSOR_PARSE');
    expect(source.health().state).toBe('running');
    const pid = (source as unknown as { pid: number }).pid;
    expect(alive(pid)).toBe(true);
    await source.stop();
    expect(alive(pid)).toBe(false);
  });

  it('restarts a command that exits, with backoff', async () => {
    const { source, items } = await started.start<SensorWindow>({
      kind: 'sensor-command',
      command: [process.execPath, '-e', 'console.log("0.5, 1.5"); console.log("2.5 3.5")'],
      channels: 2,
      window: 2,
      backoff: { initialMs: 50, maxMs: 500, factor: 2, jitter: 0.2 },
    });
    await waitFor(() => items.length >= 2 && source.health().restarts >= 1, {
      what: 'windows from two runs',
    });
    expect(values(items)[0]).toEqual([0.5, 1.5, 2.5, 3.5]);
    expect(items[0]!.shape).toEqual([2, 2]);
    expect(source.stats().errors.E_SOURCE_EXITED).toBeGreaterThanOrEqual(1);
  });
});

describe('sensor-file source', () => {
  it('follows appended lines like tail -F, through truncation and rotation', async () => {
    const file = path.join(tmp.dir, 'temp.log');
    fs.writeFileSync(file, '99\n98\n');
    const { source, items } = await started.start<SensorWindow>({
      kind: 'sensor-file',
      path: file,
      window: 2,
      pollMs: 50,
    });
    fs.appendFileSync(file, '1\n');
    fs.appendFileSync(file, '2\n3');
    await waitFor(() => items.length >= 1, { what: 'first window' });
    expect(values(items)).toEqual([[1, 2]]);
    fs.appendFileSync(file, '\n4\n');
    await waitFor(() => items.length >= 2, { what: 'second window' });
    expect(values(items)[1]).toEqual([3, 4]);

    // Rewritten shorter than what was read (truncation): read from the start.
    fs.writeFileSync(file, '5\n6\n');
    await waitFor(() => items.length >= 3, { what: 'window after truncation' });
    expect(values(items)[2]).toEqual([5, 6]);

    // Rotated: renamed away, a new file in its place.
    fs.renameSync(file, `${file}.1`);
    fs.writeFileSync(file, '7\n8\n');
    await waitFor(() => items.length >= 4, { what: 'window after rotation' });
    expect(values(items)[3]).toEqual([7, 8]);
    expect(source.health().state).toBe('running');
  });

  it('waits for a missing file with a coded error and reads it whole once it appears', async () => {
    const file = path.join(tmp.dir, 'later.log');
    const { source, items } = await started.start<SensorWindow>({
      kind: 'sensor-file',
      path: file,
      window: 3,
      pollMs: 50,
      fields: ['t'],
    });
    expect(source.health()).toMatchObject({ state: 'backoff', lastError: { code: 'E_SOURCE_SENSOR_FILE' } });
    fs.writeFileSync(file, '{"t": 1}\n{"t": 2}\n{"t": 3}\n');
    await waitFor(() => items.length >= 1, { what: 'window from the new file' });
    expect(values(items)).toEqual([[1, 2, 3]]);
    expect(source.health().state).toBe('running');
  });
});

describe('sensor-mqtt source', () => {
  let broker: TestMosquitto;
  let sensorClient: MqttClient;
  let publisher: MqttClient;

  beforeAll(async () => {
    broker = await TestMosquitto.start({
      users: { agent: 'agent-pw', station: 'station-pw' },
      acl: ['user agent', 'topic read weather/#', '', 'user station', 'topic write weather/#', ''].join('\n'),
    });
    sensorClient = await mqtt.connectAsync(broker.url, {
      username: 'agent',
      password: 'agent-pw',
      reconnectPeriod: 0,
    });
    publisher = await mqtt.connectAsync(broker.url, {
      username: 'station',
      password: 'station-pw',
      reconnectPeriod: 0,
    });
  });

  afterAll(async () => {
    await sensorClient?.endAsync();
    await publisher?.endAsync();
    await broker?.close();
  });

  it('windows JSON readings from a topic filter on the agent client and counts bad payloads', async () => {
    const { source, items } = await started.start<SensorWindow>(
      { kind: 'sensor-mqtt', topic: 'weather/+/wind', fields: ['speed', 'dir.deg'], window: 2, qos: 1 },
      { mqtt: sensorClient },
    );
    await waitFor(() => source.health().state === 'running', { what: 'subscribed' });
    await publisher.publishAsync('weather/roof/wind', JSON.stringify({ speed: 3.5, dir: { deg: 90 } }), {
      qos: 1,
    });
    await publisher.publishAsync('weather/roof/rain', JSON.stringify({ speed: 100, dir: { deg: 100 } }), {
      qos: 1,
    });
    await publisher.publishAsync('weather/roof/wind', 'not json', { qos: 1 });
    await publisher.publishAsync('weather/roof/wind', '{"speed": 4.5, "dir": {"deg": 180}}\n', { qos: 1 });
    await waitFor(() => items.length >= 1, { what: 'a window' });
    expect(values(items)).toEqual([[3.5, 90, 4.5, 180]]);
    expect(items[0]!.shape).toEqual([2, 2]);
    expect(source.stats().errors).toEqual({ E_SOURCE_SENSOR_PARSE: 1 });
    await source.stop();
    await publisher.publishAsync('weather/roof/wind', '{"speed": 1, "dir": {"deg": 1}}', { qos: 1 });
    await publisher.publishAsync('weather/roof/wind', '{"speed": 1, "dir": {"deg": 1}}', { qos: 1 });
    expect(source.health().itemsIn).toBe(1);
  });
});
