import { isPerchError } from '@perch/shared';
import { createSource, parseSourceConfig, SOURCE_KINDS, sourceConfigSchema } from '../../src/sources';
import { fakeSpawn } from './fake-child';

describe('source config', () => {
  it('fills in defaults', () => {
    const cfg = parseSourceConfig({ kind: 'rtsp', url: 'rtsp://cam.local/stream' });
    expect(cfg).toMatchObject({ kind: 'rtsp', transport: 'tcp', output: 'jpeg', stallTimeoutMs: 20_000 });
    const audio = parseSourceConfig({ kind: 'audio', input: { type: 'alsa' } });
    expect(audio).toMatchObject({ sampleRate: 16_000, window: 512, hop: 512, input: { device: 'default' } });
    const sensor = parseSourceConfig({
      kind: 'sensor-file',
      path: '/tmp/x',
      window: 8,
      fields: ['a', 'b.c'],
    });
    expect(sensor).toMatchObject({ hop: 8, channels: 2, fromStart: false });
  });

  it('has a schema for every kind', () => {
    const examples: Record<string, unknown> = {
      lavfi: { kind: 'lavfi', graph: 'testsrc' },
      file: { kind: 'file', path: '/v.mp4' },
      rtsp: { kind: 'rtsp', url: 'rtsp://h/s' },
      v4l2: { kind: 'v4l2', device: '/dev/video0' },
      mjpeg: { kind: 'mjpeg', url: 'http://h/mjpg' },
      folder: { kind: 'folder', path: '/in' },
      'snapshot-url': { kind: 'snapshot-url', url: 'https://h/snap.jpg' },
      audio: { kind: 'audio', input: { type: 'lavfi', graph: 'sine' } },
      'sensor-command': { kind: 'sensor-command', command: ['sensors'] },
      'sensor-file': { kind: 'sensor-file', path: '/dev/ttyX' },
      'sensor-mqtt': { kind: 'sensor-mqtt', topic: 'home/+/temp' },
    };
    for (const kind of SOURCE_KINDS) expect(sourceConfigSchema.safeParse(examples[kind]).success).toBe(true);
  });

  it('reports every bad value with its path, and unknown keys', () => {
    try {
      parseSourceConfig({ kind: 'v4l2', device: '/etc/passwd', fps: -1, colour: 'red' });
      throw new Error('accepted');
    } catch (err) {
      expect(isPerchError(err) && err.code).toBe('E_CONFIG_INVALID');
      const issues = (err as { details: { issues: string[] } }).details.issues;
      expect(issues.some((i) => i.startsWith('source.device:'))).toBe(true);
      expect(issues.some((i) => i.startsWith('source.fps:'))).toBe(true);
      expect(issues.some((i) => i.includes('colour'))).toBe(true);
    }
  });

  it('refuses an unknown kind, a URL with the wrong scheme and rgb24 without a size', () => {
    expect(() => parseSourceConfig({ kind: 'webcam' })).toThrow(/kind/);
    expect(() => parseSourceConfig({ kind: 'mjpeg', url: 'rtsp://h/s' })).toThrow(/source\.url/);
    expect(() => parseSourceConfig({ kind: 'lavfi', graph: 'testsrc', output: 'rgb24', width: 64 })).toThrow(
      /rgb24/,
    );
    expect(() =>
      parseSourceConfig({ kind: 'sensor-command', command: ['x'], fields: ['a', 'b'], channels: 3 }),
    ).toThrow(/channels/);
  });

  it('refuses malformed MQTT topic filters', () => {
    for (const topic of ['a/#/b', 'a/b#', 'a+/b']) {
      expect(() => parseSourceConfig({ kind: 'sensor-mqtt', topic })).toThrow(/source\.topic/);
    }
    expect(parseSourceConfig({ kind: 'sensor-mqtt', topic: '+/x/#' })).toMatchObject({ topic: '+/x/#' });
  });

  it('needs a broker url or an MQTT client for sensor-mqtt', () => {
    expect(() => createSource({ kind: 'sensor-mqtt', topic: 't' })).toThrow(/broker `url`.*MQTT client/);
    // With its own broker nothing is needed from deps, and nothing connects before start().
    const connect = jest.fn();
    const own = createSource(
      { kind: 'sensor-mqtt', topic: 't', url: 'mqtts://broker.local:8883', username: 'u', password: 'p' },
      { mqttConnect: connect },
    );
    expect(own.itemKind).toBe('sensor');
    expect(connect).not.toHaveBeenCalled();
  });

  it('takes mqtt(s)/ws(s) broker urls for sensor-mqtt, and credentials only with a url', () => {
    for (const url of ['mqtt://b:1883', 'mqtts://b', 'ws://b/mqtt', 'wss://b/mqtt'])
      expect(parseSourceConfig({ kind: 'sensor-mqtt', topic: 't', url })).toMatchObject({ url });
    for (const url of ['http://b', 'b:1883', 'file:///x'])
      expect(() => parseSourceConfig({ kind: 'sensor-mqtt', topic: 't', url })).toThrow(/source\.url/);
    expect(() => parseSourceConfig({ kind: 'sensor-mqtt', topic: 't', username: 'u' })).toThrow(
      /source\.url/,
    );
  });

  it('builds a source of the right item kind without starting anything', () => {
    const { spawn, calls } = fakeSpawn();
    expect(createSource({ kind: 'lavfi', graph: 'testsrc' }, { spawn }).itemKind).toBe('frame');
    expect(createSource({ kind: 'folder', path: '/in' }).itemKind).toBe('frame');
    expect(createSource({ kind: 'audio', input: { type: 'alsa' } }, { spawn }).itemKind).toBe('audio');
    expect(createSource({ kind: 'sensor-command', command: ['x'] }, { spawn, id: 'temp' }).id).toBe('temp');
    expect(calls).toHaveLength(0);
  });
});
