import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '@perch/shared';
import sharp from 'sharp';
import type { Frame } from '../../../agent/src/pipeline/types';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { ffmpeg, Started } from './helpers';

jest.setTimeout(60_000);

const started = new Started();
let tmp: ReturnType<typeof tempDir>;
const servers: http.Server[] = [];

beforeEach(() => {
  tmp = tempDir('perch-camera-');
});

afterEach(async () => {
  await started.stopAll();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  tmp.cleanup();
});

describe('camera sources through ffmpeg', () => {
  it('streams JPEG frames from an ffmpeg lavfi test source at the requested size', async () => {
    const { source, items } = await started.start<Frame>({
      kind: 'lavfi',
      graph: 'testsrc2=size=320x240:rate=10',
      fps: 5,
      width: 160,
    });
    await waitFor(() => items.length >= 3, { what: '3 frames' });
    const meta = await sharp(items[2]!.data).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 160, height: 120 });
    expect(items[2]!.seq).toBeGreaterThan(items[1]!.seq);
    const health = source.health();
    expect(health).toMatchObject({ kind: 'lavfi', state: 'running', restarts: 0 });
    expect(health.fpsIn).toBeGreaterThan(0);
    expect(health.lastError).toBeUndefined();
  });

  it('streams raw rgb24 frames of a fixed size', async () => {
    const { items } = await started.start<Frame>({
      kind: 'lavfi',
      graph: 'testsrc2=size=320x240:rate=10',
      output: 'rgb24',
      width: 64,
      height: 48,
    });
    await waitFor(() => items.length >= 2, { what: '2 raw frames' });
    expect(items[1]!.raw).toEqual({ width: 64, height: 48, channels: 3 });
    expect(items[1]!.data.length).toBe(64 * 48 * 3);
  });

  it('reads a video file made by ffmpeg to its end, every frame either handed on or counted as dropped', async () => {
    const video = path.join(tmp.dir, 'clip.mp4');
    await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=10', '-t', '2', '-c:v', 'mpeg4', video]);
    const { source, items } = await started.start<Frame>({ kind: 'file', path: video, realtime: false });
    await waitFor(() => source.health().ended, { what: 'end of file' });
    await waitFor(() => source.stats().produced + source.stats().dropped === 20, {
      what: 'all frames accounted',
    });
    expect(source.health()).toMatchObject({ state: 'stopped', ended: true, itemsIn: 20, restarts: 0 });
    expect(items.at(-1)!.seq).toBe(19);
    expect((await sharp(items[0]!.data).metadata()).width).toBe(320);
  });

  it('streams frames from an HTTP MJPEG (multipart) camera', async () => {
    const jpeg = await sharp({ create: { width: 96, height: 64, channels: 3, background: '#804020' } })
      .jpeg()
      .toBuffer();
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'multipart/x-mixed-replace; boundary=perchframe' });
      const timer = setInterval(() => {
        res.write(`--perchframe\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
        res.write(jpeg);
        res.write('\r\n');
      }, 50);
      req.on('close', () => clearInterval(timer));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const { source, items } = await started.start<Frame>({
      kind: 'mjpeg',
      url: `http://127.0.0.1:${port}/video`,
    });
    await waitFor(() => items.length >= 3, { what: 'MJPEG frames' });
    expect(await sharp(items[2]!.data).metadata()).toMatchObject({ width: 96, height: 64 });
    expect(source.health().state).toBe('running');
  });

  it('gives a coded error with the stderr tail when ffmpeg exits at once, and restarts it with growing backoff', async () => {
    const clock = new ManualClock();
    const backoff = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0.2 };
    const missing = path.join(tmp.dir, 'no-such-video.mp4');
    const { source } = await started.start(
      { kind: 'file', path: missing, backoff },
      { clock, random: () => 0 },
    );

    const first = await waitFor(() => source.health().lastError, { what: 'first failure' });
    expect(first.code).toBe('E_SOURCE_EXITED');
    expect(source.health().state).toBe('backoff');
    expect(source.health().stderrTail?.join('\n')).toMatch(/No such file/);
    expect(first.details).toMatchObject({ exitCode: expect.any(Number), retryInMs: 1000 });

    await clock.advance(1000);
    await waitFor(() => source.stats().errors.E_SOURCE_EXITED === 2, { what: 'second failure' });
    expect(source.health().restarts).toBe(1);
    expect(source.health().lastError?.details).toMatchObject({ retryInMs: 2000 });
    await clock.advance(2000);
    await waitFor(() => source.stats().errors.E_SOURCE_EXITED === 3, { what: 'third failure' });
    expect(source.health().lastError?.details).toMatchObject({ retryInMs: 4000 });
  });

  it('restarts ffmpeg killed from outside and frames resume', async () => {
    const { source, items } = await started.start<Frame>({
      kind: 'lavfi',
      graph: 'testsrc2=size=160x120:rate=10',
      backoff: { initialMs: 50, maxMs: 1000, factor: 2, jitter: 0.2 },
    });
    await waitFor(() => items.length >= 2, { what: 'frames before the kill' });
    const pid = (source as unknown as { pid: number }).pid;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => source.health().restarts >= 1, { what: 'restart' });
    expect(source.health().lastError).toMatchObject({
      code: 'E_SOURCE_EXITED',
      details: { signal: 'SIGKILL' },
    });
    const before = items.length;
    await waitFor(() => items.length >= before + 2, { what: 'frames after the restart' });
    expect(source.health().state).toBe('running');
    expect((source as unknown as { pid: number }).pid).not.toBe(pid);
  });

  it('reports E_SOURCE_SPAWN when the ffmpeg binary is missing', async () => {
    const ffmpegPath = path.join(tmp.dir, 'bin', 'ffmpeg');
    expect(fs.existsSync(ffmpegPath)).toBe(false);
    const { source } = await started.start(
      { kind: 'lavfi', graph: 'testsrc' },
      { ffmpegPath, clock: new ManualClock() },
    );
    const err = await waitFor(() => source.health().lastError, { what: 'spawn failure' });
    expect(err.code).toBe('E_SOURCE_SPAWN');
    expect(source.health().state).toBe('backoff');
  });
});
