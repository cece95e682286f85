import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ManualClock } from '@perch/shared';
import { tempDir } from '../../../test/helpers/tmp';
import { Downloader } from '../../src/core/downloader';
import { silentLogger } from './helpers';

type Mode = 'normal' | 'ignore-range' | 'endless' | 'trickle' | 'cut';

/** A small fault server: serves one artifact normally, ignoring Range, endlessly, trickling, or cut off. */
async function faultServer(body: Buffer) {
  const state = { mode: 'normal' as Mode, ranges: [] as string[], sent: 0 };
  const server = http.createServer((req, res) => {
    state.ranges.push(String(req.headers.range ?? ''));
    const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (state.mode === 'endless') {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (res.write(chunk)) state.sent += chunk.length;
      };
      res.on('drain', pump);
      pump();
      req.on('close', () => res.destroy());
      return;
    }
    if (state.mode === 'trickle') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 10));
      req.on('close', () => res.destroy());
      return;
    }
    if (state.mode === 'cut') {
      const socket = res.socket;
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1000), () => socket?.destroy());
      return;
    }
    if (m && state.mode === 'normal') {
      const start = Number(m[1]);
      res.writeHead(206, {
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'content-length': body.length - start,
      });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/artifact`;
  return { server, url, state, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const body = crypto.randomBytes(300_000);
const digest = crypto.createHash('sha256').update(body).digest('hex');
const limits = { deadlineMs: 60_000, minBytesPerSec: 1000, windowMs: 5000, syncEveryBytes: 64 * 1024 };

describe('Downloader', () => {
  let tmp: ReturnType<typeof tempDir>;
  let srv: Awaited<ReturnType<typeof faultServer>>;
  let partFile: string;
  beforeEach(async () => {
    tmp = tempDir();
    srv = await faultServer(body);
    partFile = path.join(tmp.dir, 'x.part');
    srv.server.closeAllConnections();
  });
  afterEach(async () => {
    srv.server.closeAllConnections();
    await srv.close();
    tmp.cleanup();
  });

  it('downloads the whole file and hashes it', async () => {
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    const r = await d.download({ url: srv.url, partFile, length: body.length });
    expect(r.sha256).toBe(digest);
    expect(fs.readFileSync(partFile).equals(body)).toBe(true);
  });

  it('resumes with Range from a partial file and re-hashes what is already there', async () => {
    fs.writeFileSync(partFile, body.subarray(0, 123_456));
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    const r = await d.download({ url: srv.url, partFile, length: body.length });
    expect(srv.state.ranges).toEqual(['bytes=123456-']);
    expect(r).toMatchObject({ sha256: digest, resumedFrom: 123_456, fetched: body.length - 123_456 });
  });

  it('still yields the right file from a server that ignores Range', async () => {
    srv.state.mode = 'ignore-range';
    fs.writeFileSync(partFile, body.subarray(0, 1000));
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    const r = await d.download({ url: srv.url, partFile, length: body.length });
    expect(r.sha256).toBe(digest);
    expect(fs.statSync(partFile).size).toBe(body.length);
  });

  it('aborts an endless response at the signed length without holding it in memory', async () => {
    srv.state.mode = 'endless';
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    await expect(d.download({ url: srv.url, partFile, length: body.length })).rejects.toMatchObject({
      code: 'E_DOWNLOAD_TOO_LARGE',
    });
    expect(fs.statSync(partFile).size).toBeLessThanOrEqual(body.length);
  });

  it('aborts a trickling download below the minimum throughput and keeps the partial', async () => {
    srv.state.mode = 'trickle';
    const clock = new ManualClock();
    const d = new Downloader(clock, silentLogger(), limits);
    let received = 0;
    const p = d.download({ url: srv.url, partFile, length: body.length, onProgress: (n) => (received = n) });
    const outcome = p.catch((e: unknown) => e);
    while (received === 0) await new Promise((r) => setTimeout(r, 5));
    await clock.advance(limits.windowMs);
    expect(await outcome).toMatchObject({ code: 'E_DOWNLOAD_TOO_SLOW' });
    expect(fs.statSync(partFile).size).toBe(10);
  });

  it('aborts at the overall deadline', async () => {
    srv.state.mode = 'trickle';
    const clock = new ManualClock();
    const d = new Downloader(clock, silentLogger(), { ...limits, minBytesPerSec: 0, deadlineMs: 1000 });
    let received = 0;
    const outcome = d
      .download({ url: srv.url, partFile, length: body.length, onProgress: (n) => (received = n) })
      .catch((e: unknown) => e);
    while (received === 0) await new Promise((r) => setTimeout(r, 5));
    await clock.advance(1000);
    expect(await outcome).toMatchObject({ code: 'E_DOWNLOAD_DEADLINE' });
  });

  it('reports a cut connection as a coded error and resumes afterwards', async () => {
    srv.state.mode = 'cut';
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    await expect(d.download({ url: srv.url, partFile, length: body.length })).rejects.toMatchObject({
      code: 'E_DOWNLOAD_HTTP',
    });
    expect(fs.statSync(partFile).size).toBe(1000);
    srv.state.mode = 'normal';
    const r = await d.download({ url: srv.url, partFile, length: body.length });
    expect(r).toMatchObject({ sha256: digest, resumedFrom: 1000 });
  });

  it('refuses an HTTP error with a code', async () => {
    const d = new Downloader(new ManualClock(), silentLogger(), limits);
    await expect(
      d.download({ url: srv.url.replace(/\d+\/artifact/, '1/x'), partFile, length: 10 }),
    ).rejects.toMatchObject({ code: 'E_DOWNLOAD_HTTP' });
  });
});
