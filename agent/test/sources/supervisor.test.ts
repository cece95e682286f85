import { ManualClock } from '@perch/shared';
import sharp from 'sharp';
import type { Frame, SensorWindow } from '../../src/pipeline/types';
import { createSource, type SensorMqttClient } from '../../src/sources';
import type { SourceDeps } from '../../src/sources/deps';
import { fakeSpawn } from './fake-child';

const backoff = { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0.5 };

async function jpeg(): Promise<Buffer> {
  return sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
}

/** Lets stream events and the source's pump run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('process-backed sources at the spawn seam', () => {
  let clock: ManualClock;
  let fake: ReturnType<typeof fakeSpawn>;
  let deps: SourceDeps;

  beforeEach(() => {
    clock = new ManualClock();
    fake = fakeSpawn();
    // random() = 0 takes no jitter off, so the delays are exactly exponential.
    deps = { clock, spawn: fake.spawn, random: () => 0 };
  });

  it('restarts ffmpeg after it exits with growing delays and reports a coded error with its stderr', async () => {
    const source = createSource({ kind: 'rtsp', url: 'rtsp://admin:pw@cam/s', backoff }, deps);
    await source.start(() => undefined);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.command).toBe('ffmpeg');

    const delays: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const child = fake.children.at(-1)!;
      child.stderr.write('rtsp://admin:pw@cam/s: Connection refused\n');
      await settle();
      child.exit(1);
      await settle();
      await settle();
      const h = source.health();
      expect(h.state).toBe('backoff');
      expect(h.lastError?.code).toBe('E_SOURCE_EXITED');
      expect(h.lastError?.message).toContain('Connection refused');
      expect(JSON.stringify(h)).not.toContain('pw@');
      const delay = (h.lastError?.details as { retryInMs: number }).retryInMs;
      delays.push(delay);
      await clock.advance(delay - 1);
      expect(fake.calls).toHaveLength(attempt + 1);
      await clock.advance(1);
      expect(fake.calls).toHaveLength(attempt + 2);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000]);
    expect(source.health().restarts).toBe(4);
    expect(source.stats().errors).toEqual({ E_SOURCE_EXITED: 4 });
    await source.stop();
    expect(fake.children.at(-1)!.killedWith).toBe('SIGTERM');
    expect(source.health().state).toBe('stopped');
  });

  it('puts jitter into the delay', async () => {
    const source = createSource({ kind: 'rtsp', url: 'rtsp://cam/s', backoff }, { ...deps, random: () => 1 });
    await source.start(() => undefined);
    fake.children[0]!.exit(1);
    await settle();
    await settle();
    expect((source.health().lastError?.details as { retryInMs: number }).retryInMs).toBe(500);
    await source.stop();
  });

  it('reports E_SOURCE_SPAWN when ffmpeg cannot be started', async () => {
    const spawn = () => {
      throw Object.assign(new Error('spawn ffmpeg ENOENT'), { code: 'ENOENT' });
    };
    const source = createSource(
      { kind: 'lavfi', graph: 'testsrc', backoff },
      { clock, spawn, random: () => 0 },
    );
    await source.start(() => undefined);
    expect(source.health()).toMatchObject({ state: 'backoff', lastError: { code: 'E_SOURCE_SPAWN' } });
    await source.stop();
  });

  it('kills and restarts a stalled ffmpeg', async () => {
    const source = createSource({ kind: 'mjpeg', url: 'http://cam/v', stallTimeoutMs: 5000, backoff }, deps);
    await source.start(() => undefined);
    await clock.advance(5000);
    await settle();
    await settle();
    expect(fake.children[0]!.killedWith).toBe('SIGKILL');
    expect(source.health().lastError?.code).toBe('E_SOURCE_STALLED');
    await source.stop();
  });

  it('ends a finite file without restarting it', async () => {
    const source = createSource({ kind: 'file', path: '/v.mp4', backoff }, deps);
    await source.start(() => undefined);
    fake.children[0]!.exit(0);
    await settle();
    await settle();
    expect(source.health()).toMatchObject({ state: 'stopped', ended: true, restarts: 0 });
    await clock.advance(60_000);
    expect(fake.calls).toHaveLength(1);
    await source.stop();
  });

  it('keeps only the newest frame of a burst and counts the others as drops', async () => {
    const img = await jpeg();
    const source = createSource({ kind: 'lavfi', graph: 'testsrc' }, deps);
    const frames: Frame[] = [];
    await source.start((f) => frames.push(f as Frame));
    await settle();
    fake.children[0]!.stdout.write(Buffer.concat([img, img, img, img]));
    await settle();
    await settle();
    // The first frame goes straight to the waiting consumer; of the three behind it only the newest is kept.
    expect(frames.map((f) => f.seq)).toEqual([0, 3]);
    expect(source.stats()).toMatchObject({ produced: 2, dropped: 2 });
    expect(source.health()).toMatchObject({ state: 'running', drops: 2, itemsIn: 4 });
    expect(frames[1]!.data.equals(img)).toBe(true);
    await source.stop();
  });

  it('windows a sensor command, counts bad lines with a code and keeps going', async () => {
    const source = createSource(
      { kind: 'sensor-command', command: ['read-sensor', '--fast'], window: 3, hop: 2 },
      deps,
    );
    const windows: SensorWindow[] = [];
    await source.start((w) => windows.push(w as SensorWindow));
    expect(fake.calls[0]).toEqual({ command: 'read-sensor', args: ['--fast'] });
    fake.children[0]!.stdout.write('1\n2\nbogus\n3\n4\n');
    fake.children[0]!.stdout.write('5');
    await settle();
    fake.children[0]!.exit(0);
    await settle();
    await settle();
    expect(windows.map((w) => Array.from(w.values))).toEqual([
      [1, 2, 3],
      [3, 4, 5],
    ]);
    expect(windows[0]!.shape).toEqual([3, 1]);
    expect(source.stats().errors).toMatchObject({ E_SOURCE_SENSOR_PARSE: 1 });
    // A sensor command that exits is restarted (onExit defaults to restart).
    expect(source.health().state).toBe('backoff');
    await source.stop();
  });
});

describe('sensor-mqtt source at the client seam', () => {
  type Listener = (...args: unknown[]) => void;
  function fakeClient(granted: { qos: number }[]) {
    const listeners = new Map<string, Set<Listener>>();
    return {
      subscriptions: [] as string[],
      subscribe(
        topic: string,
        _opts: unknown,
        cb?: (err: Error | null, granted?: { qos: number }[]) => void,
      ) {
        this.subscriptions.push(topic);
        cb?.(null, granted);
      },
      unsubscribe(_topic: string, cb?: () => void) {
        cb?.();
      },
      on(event: string, fn: Listener) {
        if (!listeners.has(event)) listeners.set(event, new Set());
        listeners.get(event)!.add(fn);
      },
      removeListener(event: string, fn: Listener) {
        listeners.get(event)?.delete(fn);
      },
      emit(event: string, ...args: unknown[]) {
        for (const fn of listeners.get(event) ?? []) fn(...args);
      },
    };
  }

  it('reports E_SOURCE_MQTT when the broker refuses the subscription', async () => {
    const client = fakeClient([{ qos: 128 }]);
    const source = createSource(
      { kind: 'sensor-mqtt', topic: 'a/+/b' },
      { mqtt: client as unknown as SensorMqttClient, clock: new ManualClock() },
    );
    await source.start(() => undefined);
    expect(source.health()).toMatchObject({ state: 'backoff', lastError: { code: 'E_SOURCE_MQTT' } });
    await source.stop();
  });

  it('subscribes again after a reconnect and stops listening on stop', async () => {
    const client = fakeClient([{ qos: 0 }]);
    const source = createSource(
      { kind: 'sensor-mqtt', topic: 't', window: 1 },
      { mqtt: client as unknown as SensorMqttClient, clock: new ManualClock() },
    );
    const items: SensorWindow[] = [];
    await source.start((w) => items.push(w as SensorWindow));
    client.emit('connect');
    expect(client.subscriptions).toEqual(['t', 't']);
    client.emit('message', 't', Buffer.from('1\n2'));
    client.emit('message', 'other', Buffer.from('3'));
    await settle();
    expect(items.map((w) => w.values[0])).toEqual([1, 2]);
    await source.stop();
    client.emit('message', 't', Buffer.from('4'));
    await settle();
    expect(items).toHaveLength(2);
  });
});
