import fs from 'node:fs';
import path from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { BaseFetcher, Updater } from 'tuf-js';
import { Metadata, MetadataKind, MetaFile, Timestamp } from '@tufjs/models';
import { ManualClock } from '@perch/shared';
import { signerFor, tufKey } from '../../../controller/src/tuf/keys';
import { fixturePath } from '../../helpers/fixtures';
import { tempDir } from '../../helpers/tmp';
import {
  api,
  assignModels,
  BLAZEFACE_SPEC,
  enroll,
  startHarness,
  uploadBundle,
  type Harness,
} from './harness';

// tuf-js decides "no newer root" from this error class, which its index does not re-export.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { DownloadHTTPError } = require('tuf-js/dist/error') as {
  DownloadHTTPError: new (m: string, s: number) => Error;
};

/** The device side: every request carries the device token. */
class DeviceFetcher extends BaseFetcher {
  constructor(private readonly token: string) {
    super();
  }
  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const res = await fetch(url, { headers: { authorization: `Bearer ${this.token}` } });
    if (!res.ok || !res.body) throw new DownloadHTTPError(`HTTP ${res.status} for ${url}`, res.status);
    return res.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

function updaterFor(h: Harness, d: { deviceToken: string; tufRoot: unknown }, dir: string): Updater {
  const metadataDir = path.join(dir, 'metadata');
  fs.mkdirSync(metadataDir, { recursive: true });
  // A device pins the root once; later updaters in the same folder start from what it trusts by then.
  const rootFile = path.join(metadataDir, 'root.json');
  if (!fs.existsSync(rootFile)) fs.writeFileSync(rootFile, JSON.stringify(d.tufRoot));
  return new Updater({
    metadataDir,
    metadataBaseUrl: `${h.ctl.url}/tuf/metadata`,
    targetDir: path.join(dir, 'targets'),
    targetBaseUrl: `${h.ctl.url}/tuf/targets`,
    fetcher: new DeviceFetcher(d.deviceToken),
  });
}

jest.setTimeout(60_000);

describe('TUF repository served to tuf-js', () => {
  let h: Harness;
  let tmp: { dir: string; cleanup: () => void };
  const target = 'models/blazeface/1/bundle.tar';
  beforeAll(async () => {
    h = await startHarness();
    tmp = tempDir('perch-tuf-client-');
    const up = await uploadBundle(h, 'blazeface', '1', {
      model: fs.readFileSync(fixturePath('blazeface.onnx')),
      spec: JSON.stringify(BLAZEFACE_SPEC),
      labels: 'face\n',
    });
    expect(up.status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
    tmp?.cleanup();
  });

  it('refreshes from /tuf/ and downloads a verified bundle with the signed length and hash', async () => {
    const d = await enroll(h);
    await assignModels(h, d.deviceId, [{ name: 'blazeface', version: '1' }]);
    const updater = updaterFor(h, d, path.join(tmp.dir, 'ok'));
    await updater.refresh();
    const info = await updater.getTargetInfo(target);
    expect(info).toBeDefined();
    expect(info?.custom).toMatchObject({ model: 'blazeface', version: '1', securityVersion: 0 });
    const file = await updater.downloadTarget(info!, path.join(tmp.dir, 'ok', 'bundle.tar'));
    const detail = await api<{ sha256: string; length: number }>(
      h,
      'GET',
      '/api/v1/models/blazeface/versions/1',
      h.adminToken,
    );
    expect(fs.statSync(file).size).toBe(detail.body.length);
    expect(info?.hashes.sha256).toBe(detail.body.sha256);
  });

  it('serves artifacts with Range and ETag, and only with credentials', async () => {
    const detail = await api<{ sha256: string; length: number }>(
      h,
      'GET',
      '/api/v1/models/blazeface/versions/1',
      h.adminToken,
    );
    const d = await enroll(h);
    await assignModels(h, d.deviceId, [{ name: 'blazeface', version: '1' }]);
    const url = `${h.ctl.url}/tuf/targets/models/blazeface/1/${detail.body.sha256}.bundle.tar`;
    const anon = await fetch(url);
    expect(anon.status).toBe(401);
    const part = await fetch(url, {
      headers: { authorization: `Bearer ${d.deviceToken}`, range: 'bytes=100-199' },
    });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${detail.body.length}`);
    expect((await part.arrayBuffer()).byteLength).toBe(100);
    const etag = part.headers.get('etag') ?? '';
    const cached = await fetch(url, {
      headers: { authorization: `Bearer ${d.deviceToken}`, 'if-none-match': etag },
    });
    expect(cached.status).toBe(304);
    const bad = await fetch(url, {
      headers: { authorization: `Bearer ${d.deviceToken}`, range: `bytes=${detail.body.length + 10}-` },
    });
    expect(bad.status).toBe(416);
    // A hash the device was not assigned is refused before the registry is looked at, so a device
    // cannot probe which artifacts exist; an operator gets the plain 404.
    const wrongHash = await fetch(url.replace(detail.body.sha256, 'a'.repeat(64)), {
      headers: { authorization: `Bearer ${d.deviceToken}` },
    });
    expect(wrongHash.status).toBe(403);
    const wrongHashOperator = await fetch(url.replace(detail.body.sha256, 'a'.repeat(64)), {
      headers: { authorization: `Bearer ${h.adminToken}` },
    });
    expect(wrongHashOperator.status).toBe(404);
  });

  it('refuses a tampered artifact', async () => {
    const detail = await api<{ sha256: string }>(
      h,
      'GET',
      '/api/v1/models/blazeface/versions/1',
      h.adminToken,
    );
    const file = h.ctl.deps.artifacts.pathOf(detail.body.sha256);
    const original = fs.readFileSync(file);
    const tampered = Buffer.from(original);
    tampered[1000] = (tampered[1000] ?? 0) ^ 0xff;
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, tampered);
    try {
      const d = await enroll(h);
      await assignModels(h, d.deviceId, [{ name: 'blazeface', version: '1' }]);
      const updater = updaterFor(h, d, path.join(tmp.dir, 'tampered'));
      await updater.refresh();
      const info = await updater.getTargetInfo(target);
      await expect(
        updater.downloadTarget(info!, path.join(tmp.dir, 'tampered', 'bundle.tar')),
      ).rejects.toThrow();
      expect(fs.existsSync(path.join(tmp.dir, 'tampered', 'bundle.tar'))).toBe(false);
    } finally {
      fs.writeFileSync(file, original);
    }
  });
});

describe('target downloads per device', () => {
  it('serves a device only the targets of its current desired state; metadata stays readable', async () => {
    const h = await startHarness();
    try {
      const v1 = await uploadBundle(h, 'blazeface', '1', {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: 'face\n',
      });
      const v2 = await uploadBundle(h, 'blazeface', '2', {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: 'face\n\n',
      });
      expect([v1.status, v2.status]).toEqual([201, 201]);
      const url = (version: string, sha256: unknown) =>
        `${h.ctl.url}/tuf/targets/models/blazeface/${version}/${String(sha256)}.bundle.tar`;
      const x = url('1', v1.body.sha256);
      const get = (token: string, range?: string) =>
        fetch(x, { headers: { authorization: `Bearer ${token}`, ...(range ? { range } : {}) } });
      // Reads the body too: an unread one keeps its connection, and the controller's close waits for it.
      const statusOf = async (res: Promise<Response>) => {
        const r = await res;
        await r.arrayBuffer();
        return r.status;
      };
      const a = await enroll(h);
      const b = await enroll(h);
      await assignModels(h, a.deviceId, [{ name: 'blazeface', version: '1' }]);

      const full = await get(a.deviceToken);
      expect(full.status).toBe(200);
      expect((await full.arrayBuffer()).byteLength).toBe(v1.body.length);
      const part = await get(a.deviceToken, 'bytes=100-199');
      expect(part.status).toBe(206);
      expect((await part.arrayBuffer()).byteLength).toBe(100);

      for (const range of [undefined, 'bytes=100-199']) {
        const refused = await get(b.deviceToken, range);
        expect(refused.status).toBe(403);
        expect(await refused.json()).toMatchObject({ error: { code: 'E_TARGET_NOT_ASSIGNED' } });
      }
      // TUF metadata is for every enrolled device: B still sees what the repository signs.
      const meta = fetch(`${h.ctl.url}/tuf/metadata/timestamp.json`, {
        headers: { authorization: `Bearer ${b.deviceToken}` },
      });
      expect(await statusOf(meta)).toBe(200);
      const metrics = await api<string>(h, 'GET', '/metrics', h.adminToken);
      expect(metrics.body).toMatch(/perch_http_rejects_total\{code="E_TARGET_NOT_ASSIGNED"\} 2/);

      await assignModels(h, b.deviceId, [{ name: 'blazeface', version: '1' }]);
      const now = await get(b.deviceToken, 'bytes=0-99');
      expect(now.status).toBe(206);
      expect((await now.arrayBuffer()).byteLength).toBe(100);

      // Only the current revision counts: A moved on to version 2 and no longer gets version 1.
      await assignModels(h, a.deviceId, [{ name: 'blazeface', version: '2' }]);
      expect(await statusOf(get(a.deviceToken))).toBe(403);
      const auth = { headers: { authorization: `Bearer ${a.deviceToken}` } };
      expect(await statusOf(fetch(url('2', v2.body.sha256), auth))).toBe(200);
      // The version 2 path with version 1's hash is not what A was assigned either.
      expect(await statusOf(fetch(url('2', v1.body.sha256), auth))).toBe(403);
      // Operators read every target.
      expect(await statusOf(get(h.adminToken))).toBe(200);
    } finally {
      await h.close();
    }
  });
});

describe('TUF expiry', () => {
  it('tuf-js refuses a repository whose timestamp has expired, and accepts it once re-signed', async () => {
    // Sign everything two days in the past: the one-day timestamp is expired, the other roles are not.
    const tufClock = new ManualClock(Date.now() - 2 * 86_400_000);
    const h = await startHarness({ tufClock });
    const tmp = tempDir('perch-tuf-expired-');
    try {
      const d = await enroll(h);
      await expect(updaterFor(h, d, path.join(tmp.dir, 'a')).refresh()).rejects.toThrow(/expired/i);
      tufClock.set(Date.now());
      await h.ctl.deps.tuf.refresh();
      await updaterFor(h, d, path.join(tmp.dir, 'b')).refresh();
    } finally {
      await h.close();
      tmp.cleanup();
    }
  });
});

describe('TUF root renewal', () => {
  it('a device enrolled with root v1 still verifies targets after v1 has expired, through the renewed root', async () => {
    const DAY = 86_400_000;
    // The repository was created 400 days ago: its first root (365 days) expired 35 days ago.
    const tufClock = new ManualClock(Date.now() - 400 * DAY);
    const h = await startHarness({ tufClock });
    const tmp = tempDir('perch-tuf-root-');
    try {
      const d = await enroll(h);
      expect((d.tufRoot as { signed: { version: number } }).signed.version).toBe(1);
      const up = await uploadBundle(h, 'blazeface', '1', {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: 'face\n',
      });
      expect(up.status).toBe(201);
      // 300 days in, 65 days before root v1 expires: the cron job renews it.
      tufClock.set(Date.now() - 100 * DAY);
      expect(await h.ctl.deps.tuf.refresh()).toMatchObject({ root: true });
      // Today: the other roles are re-signed, root v2 (265 days left) is not renewed again.
      tufClock.set(Date.now());
      expect(await h.ctl.deps.tuf.refresh()).toMatchObject({ root: false, timestamp: true });

      await assignModels(h, d.deviceId, [{ name: 'blazeface', version: '1' }]);
      const dir = path.join(tmp.dir, 'device');
      const updater = updaterFor(h, d, dir);
      await updater.refresh();
      const info = await updater.getTargetInfo('models/blazeface/1/bundle.tar');
      expect(info?.custom).toMatchObject({ model: 'blazeface', version: '1' });
      const file = await updater.downloadTarget(info!, path.join(dir, 'bundle.tar'));
      expect(fs.statSync(file).size).toBe(info!.length);
      const trusted = JSON.parse(fs.readFileSync(path.join(dir, 'metadata', 'root.json'), 'utf8')) as {
        signed: { version: number; expires: string };
      };
      expect(trusted.signed.version).toBe(2);
      expect(Date.parse(trusted.signed.expires)).toBeGreaterThan(Date.now());
    } finally {
      await h.close();
      tmp.cleanup();
    }
  });
});

/** Writes a timestamp signed with `pem` in place of the served one, as a holder of that key would serve it. */
function forgeTimestamp(h: Harness, version: (current: number) => number, pem: string): void {
  const served = path.join(h.ctl.deps.tuf.metadataDir, 'timestamp.json');
  const current = Metadata.fromJSON(
    MetadataKind.Timestamp,
    JSON.parse(fs.readFileSync(served, 'utf8')) as Parameters<typeof Metadata.fromJSON>[1],
  );
  const forged = new Metadata(
    new Timestamp({
      version: version(current.signed.version),
      specVersion: '1.0.31',
      expires: current.signed.expires,
      snapshotMeta: new MetaFile({ version: current.signed.snapshotMeta.version }),
    }),
  );
  const privateKey = createPrivateKey(pem);
  forged.sign(signerFor({ privateKey, key: tufKey(createPublicKey(privateKey)) }));
  fs.writeFileSync(served, JSON.stringify(forged.toJSON()));
}

describe('TUF key rotation', () => {
  it('recovers devices from a fast-forward attack with a leaked timestamp key, and then refuses that key', async () => {
    const h = await startHarness();
    const tmp = tempDir('perch-tuf-rotate-');
    try {
      const up = await uploadBundle(h, 'blazeface', '1', {
        model: fs.readFileSync(fixturePath('blazeface.onnx')),
        spec: JSON.stringify(BLAZEFACE_SPEC),
        labels: 'face\n',
      });
      expect(up.status).toBe(201);
      const d = await enroll(h);
      await assignModels(h, d.deviceId, [{ name: 'blazeface', version: '1' }]);
      const dir = path.join(tmp.dir, 'device');
      await updaterFor(h, d, dir).refresh();

      // The timestamp key leaks; its holder serves timestamp version 100000 and the device trusts it.
      const leaked = fs.readFileSync(
        path.join(h.ctl.deps.tuf.metadataDir, '..', 'keys', 'timestamp.pem'),
        'utf8',
      );
      forgeTimestamp(h, () => 100_000, leaked);
      await updaterFor(h, d, dir).refresh();
      // From now on every honest timestamp looks like a rollback to the device.
      await h.ctl.deps.tuf.resignTimestamp();
      await expect(updaterFor(h, d, dir).refresh()).rejects.toThrow(/less than current version 100000/);

      await h.ctl.deps.tuf.rotateKeys(['timestamp', 'snapshot', 'targets']);
      const updater = updaterFor(h, d, dir);
      await updater.refresh();
      const info = await updater.getTargetInfo('models/blazeface/1/bundle.tar');
      expect(info).toBeDefined();
      await updater.downloadTarget(info!, path.join(dir, 'bundle.tar'));
      const trusted = JSON.parse(fs.readFileSync(path.join(dir, 'metadata', 'root.json'), 'utf8')) as {
        signed: { version: number };
      };
      expect(trusted.signed.version).toBe(2);

      // The removed key signs nothing the device accepts any more.
      forgeTimestamp(h, (v) => v + 1, leaked);
      await expect(updaterFor(h, d, dir).refresh()).rejects.toThrow(/timestamp was signed by 0\/1 keys/);
      await h.ctl.deps.tuf.resignTimestamp();
      await updaterFor(h, d, dir).refresh();
    } finally {
      await h.close();
      tmp.cleanup();
    }
  });
});
