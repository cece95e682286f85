import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ManualClock, PerchError } from '@perch/shared';
import { choosePort, DemoFeeder, portInUse, resolveDemoSource } from '@perch/embedded';
import { agentConfigSchema } from '../../agent/src/core/config';
import { checkRemotePipeline } from '../../agent/src/core/remote-pipelines';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-embedded-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function listen(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      resolve({ port, close: () => new Promise<void>((r) => s.close(() => r())) });
    });
  });
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof PerchError ? err.code : 'not a PerchError';
  }
  return 'no error';
}

describe('choosePort', () => {
  it('refuses a taken port the user asked for, naming the variable', async () => {
    const held = await listen();
    await expect(
      choosePort('PERCH_HTTP_PORT', { PERCH_HTTP_PORT: String(held.port) }, 8080),
    ).rejects.toMatchObject({
      code: 'E_PORT_IN_USE',
      message: expect.stringContaining('PERCH_HTTP_PORT'),
    });
    await held.close();
  });

  it('moves past a taken default and says so', async () => {
    const held = await listen();
    const choice = await choosePort('PERCH_MQTT_PORT', {}, held.port);
    expect(choice.fallbackFrom).toBe(held.port);
    expect(choice.port).toBeGreaterThan(held.port);
    expect(await portInUse(choice.port)).toBe(false);
    await held.close();
  });

  it('rejects a value that is not a port', async () => {
    await expect(choosePort('PERCH_HTTP_PORT', { PERCH_HTTP_PORT: 'eighty' }, 8080)).rejects.toMatchObject({
      code: 'E_CONFIG_INVALID',
    });
  });
});

describe('resolveDemoSource', () => {
  const frames = () => path.join(dir, 'frames');
  const noDefault = () => [];

  it('feeds a folder of the user photos into the watched folder', () => {
    fs.writeFileSync(path.join(dir, 'b.png'), 'x');
    fs.writeFileSync(path.join(dir, 'a.jpg'), 'x');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'x');
    const s = resolveDemoSource(dir, frames(), noDefault);
    expect(s.source).toMatchObject({ kind: 'folder', path: frames() });
    expect(s.feed?.map((f) => path.basename(f))).toEqual(['a.jpg', 'b.png']);
  });

  it('maps video files, URLs and cameras to their source kinds', () => {
    const video = path.join(dir, 'clip.mp4');
    fs.writeFileSync(video, 'x');
    expect(resolveDemoSource(video, frames(), noDefault).source).toMatchObject({
      kind: 'file',
      path: video,
      loop: true,
    });
    expect(resolveDemoSource('rtsp://cam/stream', frames(), noDefault).source).toMatchObject({
      kind: 'rtsp',
    });
    expect(resolveDemoSource('http://cam/video', frames(), noDefault).source).toMatchObject({
      kind: 'mjpeg',
    });
    expect(resolveDemoSource('http://cam/snap.jpg', frames(), noDefault).source).toMatchObject({
      kind: 'snapshot-url',
    });
    expect(resolveDemoSource('/dev/video0', frames(), noDefault).source).toMatchObject({
      kind: 'v4l2',
      device: '/dev/video0',
    });
  });

  it('gives the local agent a policy that lets each demo source through, and no more than it needs', () => {
    const video = path.join(dir, 'clip.mp4');
    fs.writeFileSync(video, 'x');
    const verdicts = [video, 'rtsp://cam/stream', 'http://cam/snap.jpg', '/dev/video0', undefined].map(
      (raw) => {
        const demo = resolveDemoSource(raw, frames(), () => ['/x/sample1.jpg']);
        const policy = agentConfigSchema.parse({
          remotePipelines: demo.remotePipelines ?? {},
        }).remotePipelines;
        const pipeline = { id: 'demo', model: 'blazeface', source: demo.source };
        return [
          demo.source.kind,
          policy.allowFileSources,
          checkRemotePipeline(pipeline, policy)?.code ?? 'ok',
        ];
      },
    );
    expect(verdicts).toEqual([
      ['file', true, 'ok'],
      ['rtsp', false, 'ok'],
      ['snapshot-url', false, 'ok'],
      ['v4l2', false, 'ok'],
      ['folder', false, 'ok'],
    ]);
  });

  it('uses the default photographs when unset', () => {
    const s = resolveDemoSource(undefined, frames(), () => ['/x/sample1.jpg']);
    expect(s.feed).toEqual(['/x/sample1.jpg']);
  });

  it('gives E_DEMO_SOURCE for nothing usable', () => {
    expect(code(() => resolveDemoSource(path.join(dir, 'missing'), frames(), noDefault))).toBe(
      'E_DEMO_SOURCE',
    );
    expect(code(() => resolveDemoSource(dir, frames(), noDefault))).toBe('E_DEMO_SOURCE');
    const doc = path.join(dir, 'doc.pdf');
    fs.writeFileSync(doc, 'x');
    expect(code(() => resolveDemoSource(doc, frames(), noDefault))).toBe('E_DEMO_SOURCE');
  });
});

describe('DemoFeeder', () => {
  it('cycles images into the folder atomically and keeps only the newest few', async () => {
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const images = ['a.jpg', 'b.jpg'].map((n) => {
      fs.writeFileSync(path.join(src, n), n);
      return path.join(src, n);
    });
    const out = path.join(dir, 'out');
    const clock = new ManualClock(0);
    const feeder = new DemoFeeder(images, out, clock, 1000, 3);
    feeder.start();
    await clock.advance(4000);
    feeder.stop();
    const files = fs.readdirSync(out).sort();
    expect(files).toEqual(['frame-000003.jpg', 'frame-000004.jpg', 'frame-000005.jpg']);
    expect(files.map((f) => fs.readFileSync(path.join(out, f), 'utf8'))).toEqual(['a.jpg', 'b.jpg', 'a.jpg']);
    await clock.advance(5000);
    expect(fs.readdirSync(out)).toHaveLength(3);
  });
});
