import { PerchError, type PipelineConfig } from '@perch/shared';
import { agentConfigSchema } from '../../src/core/config';
import { Counters } from '../../src/core/counters';
import { NoopPipelineHost } from '../../src/core/pipelines-port';
import {
  checkRemotePipeline,
  hostAllowed,
  isPlainGenerator,
  isUnder,
  RefusedPipelinesHost,
  screenRemotePipelines,
  urlHost,
  type RemotePipelinePolicy,
} from '../../src/core/remote-pipelines';
import { silentLogger } from './helpers';

const policy = (p: Record<string, unknown> = {}): RemotePipelinePolicy =>
  agentConfigSchema.parse({ remotePipelines: p }).remotePipelines;

const pipeline = (id: string, source: Record<string, unknown>): PipelineConfig => ({
  id,
  model: 'detector',
  source: source as PipelineConfig['source'],
});

/** The code when refused, 'ok' when allowed. */
const verdict = (source: Record<string, unknown>, p: RemotePipelinePolicy = policy()) =>
  checkRemotePipeline(pipeline('p1', source), p)?.code ?? 'ok';

const REFUSED = 'E_PIPELINE_SOURCE_NOT_ALLOWED';

describe('remotePipelines config', () => {
  it('defaults: no commands, no files, any folder, any URL host', () => {
    expect(policy()).toEqual({ allowCommandSources: false, allowFileSources: false });
  });

  it('refuses relative or dotted folders and malformed hosts', () => {
    for (const bad of [
      { allowedFolders: ['srv/in'] },
      { allowedFolders: ['/srv/../etc'] },
      { allowedFolders: ['/srv/./in'] },
      { allowedUrlHosts: ['cam.lan/x'] },
      { allowedUrlHosts: ['10.0.0.0/40'] },
      { allowedUrlHosts: ['http://cam.lan'] },
      { allowCommands: true },
    ]) {
      expect(agentConfigSchema.safeParse({ remotePipelines: bad }).success).toBe(false);
    }
    expect(
      agentConfigSchema.safeParse({
        remotePipelines: {
          allowedFolders: ['/', '/srv/in/'],
          allowedUrlHosts: ['cam.lan', '*.cams.lan', '10.1.0.0/16', 'fd00::/8', '192.168.1.7'],
        },
      }).success,
    ).toBe(true);
  });
});

describe('checkRemotePipeline with the default policy', () => {
  it('refuses commands, files and non-generator lavfi graphs', () => {
    expect(verdict({ kind: 'sensor-command', command: ['/bin/sh', '-c', 'id'] })).toBe(REFUSED);
    expect(verdict({ kind: 'sensor-file', path: '/etc/shadow' })).toBe(REFUSED);
    expect(verdict({ kind: 'file', path: '/var/media/clip.mp4' })).toBe(REFUSED);
    expect(verdict({ kind: 'file', path: 'http://10.0.0.1/admin' })).toBe(REFUSED);
    expect(verdict({ kind: 'audio', input: { type: 'file', path: '/x.wav' } })).toBe(REFUSED);
    expect(verdict({ kind: 'lavfi', graph: 'movie=/etc/passwd' })).toBe(REFUSED);
    expect(verdict({ kind: 'lavfi', graph: "testsrc,drawtext=textfile='/etc/shadow'" })).toBe(REFUSED);
    expect(verdict({ kind: 'lavfi', graph: 'life=filename=/etc/shadow' })).toBe(REFUSED);
    expect(verdict({ kind: 'audio', input: { type: 'lavfi', graph: 'amovie=/secret.wav' } })).toBe(REFUSED);
    expect(verdict({ kind: 'folder', path: '/srv/in', extensions: ['.jpg', '.pem'] })).toBe(REFUSED);
  });

  it('allows cameras, image folders, URLs, test generators, ALSA and MQTT sensors', () => {
    expect(verdict({ kind: 'v4l2', device: '/dev/video0' })).toBe('ok');
    expect(verdict({ kind: 'rtsp', url: 'rtsp://user:pw@10.0.0.9:554/stream' })).toBe('ok');
    expect(verdict({ kind: 'mjpeg', url: 'http://cam.lan/video' })).toBe('ok');
    expect(verdict({ kind: 'snapshot-url', url: 'https://cam.lan/snap.jpg' })).toBe('ok');
    expect(verdict({ kind: 'folder', path: '/srv/in' })).toBe('ok');
    expect(verdict({ kind: 'folder', path: '/srv/in', extensions: ['.tiff', '.avif'] })).toBe('ok');
    expect(verdict({ kind: 'lavfi', graph: 'testsrc2=size=640x480:rate=30000/1001' })).toBe('ok');
    expect(verdict({ kind: 'lavfi', graph: 'color=c=#ff0000:size=64x64' })).toBe('ok');
    expect(verdict({ kind: 'audio', input: { type: 'lavfi', graph: 'sine=frequency=440' } })).toBe('ok');
    expect(verdict({ kind: 'audio', input: { type: 'alsa' } })).toBe('ok');
    expect(verdict({ kind: 'sensor-mqtt', topic: 'site/+/temp' })).toBe('ok');
  });

  it('lets an invalid source through to the host, which refuses it without running anything', () => {
    expect(verdict({ kind: 'sensor-command' })).toBe('ok');
    expect(verdict({ kind: 'no-such-kind' })).toBe('ok');
  });

  it('names the setting to change in the refusal', () => {
    const err = checkRemotePipeline(pipeline('probe', { kind: 'sensor-command', command: ['id'] }), policy());
    expect(err).toBeInstanceOf(PerchError);
    expect(err?.message).toMatch(/pipeline probe/);
    expect(err?.details).toMatchObject({
      kind: 'sensor-command',
      setting: 'remotePipelines.allowCommandSources',
    });
  });
});

describe('checkRemotePipeline with settings', () => {
  it('allowCommandSources allows commands and any lavfi graph, not files', () => {
    const p = policy({ allowCommandSources: true });
    expect(verdict({ kind: 'sensor-command', command: ['/usr/bin/read-sensor'] }, p)).toBe('ok');
    expect(verdict({ kind: 'lavfi', graph: 'movie=/srv/clip.mp4' }, p)).toBe('ok');
    expect(verdict({ kind: 'sensor-file', path: '/dev/ttyUSB0' }, p)).toBe(REFUSED);
  });

  it('allowFileSources allows files and any folder extensions, not commands', () => {
    const p = policy({ allowFileSources: true });
    expect(verdict({ kind: 'sensor-file', path: '/run/sensor.log' }, p)).toBe('ok');
    expect(verdict({ kind: 'file', path: '/var/media/clip.mp4' }, p)).toBe('ok');
    expect(verdict({ kind: 'folder', path: '/srv/in', extensions: ['.bin'] }, p)).toBe('ok');
    expect(verdict({ kind: 'sensor-command', command: ['id'] }, p)).toBe(REFUSED);
  });

  it('allowedFolders limits folder sources to those folders and below', () => {
    const p = policy({ allowedFolders: ['/srv/inbox/'] });
    expect(verdict({ kind: 'folder', path: '/srv/inbox' }, p)).toBe('ok');
    expect(verdict({ kind: 'folder', path: '/srv/inbox/cam1' }, p)).toBe('ok');
    expect(verdict({ kind: 'folder', path: '/srv/inbox2' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'folder', path: '/srv/inbox/../../home/pi' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'folder', path: 'srv/inbox' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'folder', path: '/home/pi/Pictures' }, policy({ allowedFolders: [] }))).toBe(
      REFUSED,
    );
  });

  it('allowedUrlHosts limits rtsp, mjpeg and snapshot-url hosts', () => {
    const p = policy({ allowedUrlHosts: ['cam.lan', '*.cams.lan', '192.168.10.0/24', 'fd00::/8'] });
    expect(verdict({ kind: 'rtsp', url: 'rtsp://u:p@cam.lan:554/s' }, p)).toBe('ok');
    expect(verdict({ kind: 'rtsp', url: 'rtsp://CAM.LAN/s' }, p)).toBe('ok');
    expect(verdict({ kind: 'mjpeg', url: 'http://door.cams.lan/v' }, p)).toBe('ok');
    expect(verdict({ kind: 'snapshot-url', url: 'http://192.168.10.20/snap.jpg' }, p)).toBe('ok');
    expect(verdict({ kind: 'snapshot-url', url: 'http://[fd00::5]/snap.jpg' }, p)).toBe('ok');
    expect(verdict({ kind: 'snapshot-url', url: 'http://192.168.11.20/snap.jpg' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'snapshot-url', url: 'http://169.254.169.254/latest' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'mjpeg', url: 'http://cams.lan/v' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'mjpeg', url: 'http://cam.lan.evil.example/v' }, p)).toBe(REFUSED);
    // Parsers disagree on these (ffmpeg reads the host after the backslash): refused.
    expect(verdict({ kind: 'mjpeg', url: 'http://cam.lan\\@evil.example/v' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'rtsp', url: 'rtsp://a@cam.lan@evil.example/s' }, p)).toBe(REFUSED);
    expect(verdict({ kind: 'mjpeg', url: 'http://%63am.lan/v' }, p)).toBe(REFUSED);
    // The hex form of an address is a name to the policy, and no name on the list.
    expect(verdict({ kind: 'rtsp', url: 'rtsp://0xc0a80a14/s' }, p)).toBe(REFUSED);
  });
});

describe('helpers', () => {
  it('isUnder compares as written', () => {
    expect(isUnder('/a/b', '/a')).toBe(true);
    expect(isUnder('/a//b/', '/a/')).toBe(true);
    expect(isUnder('/ab', '/a')).toBe(false);
    expect(isUnder('/a/./b', '/a')).toBe(false);
    expect(isUnder('/x', '/')).toBe(true);
  });

  it('urlHost and hostAllowed', () => {
    expect(urlHost('rtsp://[::1]:554/x')).toBe('::1');
    expect(urlHost('http://Cam.Lan./x')).toBe('cam.lan');
    expect(urlHost('not a url')).toBeUndefined();
    expect(hostAllowed('10.0.0.1', ['10.0.0.1'])).toBe(true);
    expect(hostAllowed('10.0.0.2', ['10.0.0.1', 'cam.lan'])).toBe(false);
    expect(hostAllowed('cam.lan', ['*.lan'])).toBe(true);
    expect(hostAllowed('lan', ['*.lan'])).toBe(false);
  });

  it('isPlainGenerator accepts one generator with plain options only', () => {
    expect(isPlainGenerator('testsrc')).toBe(true);
    expect(isPlainGenerator('smptebars=size=1280x720')).toBe(true);
    expect(isPlainGenerator('testsrc;movie=/x')).toBe(false);
    expect(isPlainGenerator('testsrc [out0]')).toBe(false);
    expect(isPlainGenerator('ladspa=file=/tmp/evil.so')).toBe(false);
  });
});

describe('screenRemotePipelines and RefusedPipelinesHost', () => {
  it('keeps allowed pipelines, reports refused ones as failed with the code, logs and counts each once', async () => {
    const { allowed, refused } = screenRemotePipelines(
      [
        pipeline('cam', { kind: 'lavfi', graph: 'testsrc' }),
        pipeline('probe', { kind: 'sensor-command', command: ['id'] }),
      ],
      policy(),
    );
    expect(allowed.map((p) => p.id)).toEqual(['cam']);
    expect([...refused.keys()]).toEqual(['probe']);

    const inner = new NoopPipelineHost();
    const counters = new Counters();
    const logger = silentLogger();
    const warn = jest.spyOn(logger, 'warn');
    const host = new RefusedPipelinesHost(inner, logger, counters, () => 1000);
    host.setRefused(refused);
    host.setRefused(refused);
    await host.apply(allowed, new Map());
    expect(inner.lastApplied().pipelines.map((p) => p.id)).toEqual(['cam']);
    const stats = host.stats();
    expect(stats).toHaveLength(1); // the Noop host reports nothing for cam
    expect(stats[0]).toMatchObject({
      id: 'probe',
      state: 'failed',
      lastError: { code: REFUSED, at: 1000 },
    });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(
      expect.any(String),
      expect.objectContaining({ code: REFUSED, pipeline: 'probe' }),
    );
    expect(counters.get('errors.e_pipeline_source_not_allowed')).toBe(1);

    host.setRefused(new Map());
    expect(host.stats()).toEqual([]);
  });
});
