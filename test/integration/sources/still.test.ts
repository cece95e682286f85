import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import type { Frame } from '../../../agent/src/pipeline/types';
import { tempDir } from '../../helpers/tmp';
import { waitFor } from '../../helpers/wait';
import { Started } from './helpers';

jest.setTimeout(60_000);

const started = new Started();
let tmp: ReturnType<typeof tempDir>;
const servers: http.Server[] = [];

function image(width: number, height: number, format: 'jpeg' | 'png' = 'jpeg'): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#2080c0' } })
    .toFormat(format)
    .toBuffer();
}

/** Writes through a temporary name and renames, as well-behaved uploaders do. */
function drop(dir: string, name: string, data: Buffer): void {
  fs.writeFileSync(path.join(dir, `.${name}.part`), data);
  fs.renameSync(path.join(dir, `.${name}.part`), path.join(dir, name));
}

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeEach(() => {
  tmp = tempDir('perch-still-');
});

afterEach(async () => {
  await started.stopAll();
  const open = servers.splice(0);
  for (const s of open) s.closeAllConnections();
  await Promise.all(open.map((s) => new Promise((r) => s.close(r))));
  tmp.cleanup();
});

describe('folder source', () => {
  const folderConfig = (dir: string) => ({ kind: 'folder', path: dir, rescanMs: 200, stableMs: 100 });

  it('emits new images only, once each', async () => {
    drop(tmp.dir, 'old.jpg', await image(20, 10));
    const { source, items } = await started.start<Frame>(folderConfig(tmp.dir));
    drop(tmp.dir, 'new.jpg', await image(40, 30));
    drop(tmp.dir, 'new.png', await image(50, 40, 'png'));
    fs.writeFileSync(path.join(tmp.dir, 'notes.txt'), 'not an image');
    await waitFor(() => items.length >= 2, { what: 'two new images' });
    const sizes = await Promise.all(items.map(async (f) => (await sharp(f.data).metadata()).width));
    expect(sizes.sort()).toEqual([40, 50]);
    // A few more rescans must not emit anything again.
    const scans = source.health().itemsIn;
    drop(tmp.dir, 'marker.jpg', await image(60, 10));
    await waitFor(() => items.length >= 3, { what: 'marker image' });
    expect(source.health().itemsIn).toBe(scans + 1);
    expect(source.health()).toMatchObject({ state: 'running', kind: 'folder' });
  });

  it('waits until a file being written has stopped growing', async () => {
    const { items } = await started.start<Frame>({ ...folderConfig(tmp.dir), stableMs: 300 });
    const data = await image(64, 64);
    const file = path.join(tmp.dir, 'slow.jpg');
    fs.writeFileSync(file, data.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 50));
    fs.appendFileSync(file, data.subarray(100));
    await waitFor(() => items.length >= 1, { what: 'the whole image' });
    expect(items).toHaveLength(1);
    expect(items[0]!.data.equals(data)).toBe(true);
  });

  it('reports a corrupt image with a code and keeps running', async () => {
    const { source, items } = await started.start<Frame>(folderConfig(tmp.dir));
    const good = await image(32, 32);
    drop(tmp.dir, 'truncated.jpg', good.subarray(0, Math.floor(good.length / 2)));
    drop(tmp.dir, 'garbage.jpg', Buffer.from('this is not a picture at all'));
    const err = await waitFor(() => source.stats().errors.E_SOURCE_IMAGE_CORRUPT, { what: 'corrupt error' });
    expect(err).toBe(1);
    await waitFor(() => source.stats().errors.E_SOURCE_IMAGE_FORMAT, { what: 'format error' });
    expect(source.health().state).toBe('running');
    drop(tmp.dir, 'after.jpg', good);
    await waitFor(() => items.length >= 1, { what: 'the good image after the bad ones' });
    expect(items[0]!.data.equals(good)).toBe(true);
  });

  it('waits for a missing folder with a coded error and picks up images once it exists', async () => {
    const dir = path.join(tmp.dir, 'later');
    const { source, items } = await started.start<Frame>(folderConfig(dir));
    expect(source.health()).toMatchObject({ state: 'backoff', lastError: { code: 'E_SOURCE_FOLDER' } });
    fs.mkdirSync(dir);
    drop(dir, 'first.jpg', await image(8, 8));
    await waitFor(() => items.length >= 1, { what: 'image in the new folder' });
    expect(source.health().state).toBe('running');
  });
});

describe('snapshot-url source', () => {
  it('polls a local HTTP snapshot server on its schedule', async () => {
    const jpeg = await image(72, 48);
    let requests = 0;
    const url = await listen((_req, res) => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpeg.length });
      res.end(jpeg);
    });
    const { source, items } = await started.start<Frame>({
      kind: 'snapshot-url',
      url: `${url}/snap.jpg`,
      intervalMs: 100,
    });
    await waitFor(() => items.length >= 3, { what: 'three snapshots' });
    expect(items[0]!.data.equals(jpeg)).toBe(true);
    expect(requests).toBeGreaterThanOrEqual(3);
    expect(source.health()).toMatchObject({ state: 'running', kind: 'snapshot-url' });
  });

  it.each([
    ['E_SOURCE_HTTP_STATUS', (res: http.ServerResponse) => res.writeHead(503).end('busy')],
    [
      'E_SOURCE_HTTP_CONTENT_TYPE',
      (res: http.ServerResponse) =>
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'),
    ],
    [
      'E_SOURCE_HTTP_TOO_LARGE',
      (res: http.ServerResponse) =>
        res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.alloc(8192, 0xff)),
    ],
    [
      'E_SOURCE_IMAGE_CORRUPT',
      (res: http.ServerResponse) =>
        res
          .writeHead(200, { 'content-type': 'image/jpeg' })
          .end(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2])),
    ],
  ])('reports %s and recovers when the camera answers properly again', async (code, badAnswer) => {
    const jpeg = await image(16, 16);
    let bad = true;
    const url = await listen((_req, res) => {
      if (bad) badAnswer(res);
      else res.writeHead(200, { 'content-type': 'image/jpeg; charset=binary' }).end(jpeg);
    });
    const { source, items } = await started.start<Frame>({
      kind: 'snapshot-url',
      url,
      intervalMs: 50,
      maxBytes: 4096,
      backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0 },
    });
    await waitFor(() => source.health().lastError, { what: code });
    expect(source.health()).toMatchObject({ state: 'backoff', lastError: { code } });
    bad = false;
    await waitFor(() => items.length >= 1, { what: 'a snapshot after recovery' });
    expect(source.health().state).toBe('running');
  });

  it('gives up on a camera that does not answer within the timeout', async () => {
    const url = await listen(() => undefined); // accepts, never answers
    const { source } = await started.start({ kind: 'snapshot-url', url, intervalMs: 100, timeoutMs: 200 });
    const err = await waitFor(() => source.health().lastError, { what: 'timeout' });
    expect(err.code).toBe('E_SOURCE_HTTP_TIMEOUT');
  });

  it('reports a refused connection as E_SOURCE_HTTP_FETCH', async () => {
    const url = await listen(() => undefined);
    const server = servers.pop()!;
    await new Promise((r) => server.close(r));
    const { source } = await started.start({ kind: 'snapshot-url', url, intervalMs: 100 });
    const err = await waitFor(() => source.health().lastError, { what: 'fetch error' });
    expect(err.code).toBe('E_SOURCE_HTTP_FETCH');
  });
});
