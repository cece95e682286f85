import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ManualClock } from '@perch/shared';
import { TufRepository } from '../src/tuf/repository';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('TUF repository', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-tuf-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('creates version 1 of every role with 0600 keys and consistent-snapshot file names', async () => {
    const repo = new TufRepository(dir, new ManualClock());
    await repo.open();
    expect(repo.versions()).toEqual({ root: 1, targets: 1, snapshot: 1, timestamp: 1 });
    for (const role of ['root', 'targets', 'snapshot', 'timestamp']) {
      expect(fs.statSync(path.join(dir, 'keys', `${role}.pem`)).mode & 0o777).toBe(0o600);
    }
    expect(fs.readdirSync(path.join(dir, 'metadata')).sort()).toEqual([
      '1.root.json',
      '1.snapshot.json',
      '1.targets.json',
      'timestamp.json',
    ]);
    const root = (await repo.trustedRoot()) as {
      signed: { consistent_snapshot: boolean; keys: Record<string, unknown> };
    };
    expect(root.signed.consistent_snapshot).toBe(true);
    expect(Object.keys(root.signed.keys)).toHaveLength(4);
  });

  it('re-signs the timestamp when half its life is gone, the snapshot when two thirds are, and nothing earlier', async () => {
    const clock = new ManualClock();
    const repo = new TufRepository(dir, clock);
    await repo.open();
    await clock.advance(11 * HOUR);
    expect(await repo.refresh()).toEqual({ root: false, timestamp: false, snapshot: false, targets: false });
    await clock.advance(2 * HOUR);
    expect(await repo.refresh()).toEqual({ root: false, timestamp: true, snapshot: false, targets: false });
    expect(repo.versions().timestamp).toBe(2);
    await clock.advance(21 * DAY);
    expect(await repo.refresh()).toEqual({ root: false, timestamp: true, snapshot: true, targets: false });
    expect(repo.versions()).toMatchObject({ snapshot: 2, timestamp: 3 });
  });

  it('renews the root with the same keys once less than a third of its life is left, and reopens on it', async () => {
    const clock = new ManualClock();
    const repo = new TufRepository(dir, clock);
    await repo.open();
    const v1 = (await repo.trustedRoot()) as { signed: Record<string, unknown> };
    await clock.advance(240 * DAY);
    expect((await repo.refresh()).root).toBe(false);
    await clock.advance(5 * DAY);
    expect((await repo.refresh()).root).toBe(true);
    expect(repo.versions().root).toBe(2);
    expect(fs.existsSync(path.join(dir, 'metadata', '2.root.json'))).toBe(true);
    const v2 = (await repo.trustedRoot()) as {
      signed: Record<string, unknown> & { expires: string; version: number };
      signatures: unknown[];
    };
    expect(v2.signed.version).toBe(2);
    expect(Date.parse(v2.signed.expires)).toBe(Math.floor((clock.now() + 365 * DAY) / 1000) * 1000);
    // Keys and roles unchanged: only version and expiry move.
    expect({ ...v2.signed, version: 1, expires: v1.signed.expires }).toEqual(v1.signed);
    expect(v2.signatures).toHaveLength(1);
    // Not again until the new root is itself close to expiry.
    expect((await repo.refresh()).root).toBe(false);
    const again = new TufRepository(dir, clock);
    await again.open();
    expect(again.versions().root).toBe(2);
  });

  it('adds targets as new signed versions and reopens where it left off', async () => {
    const clock = new ManualClock();
    const repo = new TufRepository(dir, clock);
    await repo.open();
    await repo.addTargets([
      { path: 'models/m/1/bundle.tar', length: 10, sha256: 'a'.repeat(64), custom: { model: 'm' } },
    ]);
    expect(repo.versions()).toEqual({ root: 1, targets: 2, snapshot: 2, timestamp: 2 });
    expect(repo.findTarget('models/m/1/bundle.tar', 'a'.repeat(64))?.custom).toEqual({ model: 'm' });
    expect(repo.findTarget('models/m/1/bundle.tar', 'b'.repeat(64))).toBeUndefined();
    const again = new TufRepository(dir, clock);
    await again.open();
    expect(again.versions()).toEqual(repo.versions());
    expect(again.findTarget('models/m/1/bundle.tar', 'a'.repeat(64))).toBeDefined();
  });

  type RootJson = {
    signed: { version: number; keys: Record<string, unknown>; roles: Record<string, { keyids: string[] }> };
  };
  const signers = (file: string) =>
    (
      JSON.parse(fs.readFileSync(path.join(dir, 'metadata', file), 'utf8')) as {
        signatures: Array<{ keyid: string }>;
      }
    ).signatures.map((s) => s.keyid);

  it('rotates the timestamp and targets keys through a new root and re-signs with the new keys', async () => {
    const repo = new TufRepository(dir, new ManualClock());
    await repo.open();
    const before = (await repo.trustedRoot()) as RootJson;
    const oldPem = fs.readFileSync(path.join(dir, 'keys', 'timestamp.pem'), 'utf8');
    const ids = await repo.rotateKeys(['timestamp', 'targets']);
    const after = (await repo.trustedRoot()) as RootJson;
    expect(after.signed.version).toBe(2);
    expect(after.signed.roles.timestamp?.keyids).toEqual([ids.timestamp]);
    expect(after.signed.roles.targets?.keyids).toEqual([ids.targets]);
    expect(after.signed.roles.snapshot?.keyids).toEqual(before.signed.roles.snapshot?.keyids);
    expect(after.signed.roles.root?.keyids).toEqual(before.signed.roles.root?.keyids);
    for (const old of [...before.signed.roles.timestamp!.keyids, ...before.signed.roles.targets!.keyids])
      expect(after.signed.keys[old]).toBeUndefined();
    expect(fs.readFileSync(path.join(dir, 'keys', 'timestamp.pem'), 'utf8')).not.toBe(oldPem);
    expect(fs.statSync(path.join(dir, 'keys', 'timestamp.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(dir, 'keys')).sort()).toEqual([
      'root.pem',
      'snapshot.pem',
      'targets.pem',
      'timestamp.pem',
    ]);
    expect(signers('timestamp.json')).toEqual([ids.timestamp]);
    expect(signers(`${repo.versions().targets}.targets.json`)).toEqual([ids.targets]);
    const again = new TufRepository(dir, new ManualClock());
    await again.open();
    expect(again.versions()).toEqual(repo.versions());
  });

  it('finishes a key rotation that stopped after the new root was written', async () => {
    const clock = new ManualClock();
    const repo = new TufRepository(dir, clock);
    await repo.open();
    const keys = path.join(dir, 'keys');
    const meta = path.join(dir, 'metadata');
    const oldKey = fs.readFileSync(path.join(keys, 'snapshot.pem'));
    const oldFiles = new Set(fs.readdirSync(meta));
    const oldTimestamp = fs.readFileSync(path.join(meta, 'timestamp.json'));
    const ids = await repo.rotateKeys(['snapshot']);
    // Back to the moment after 2.root.json: the new key still waiting, nothing re-signed yet.
    fs.renameSync(path.join(keys, 'snapshot.pem'), path.join(keys, 'snapshot.pem.next'));
    fs.writeFileSync(path.join(keys, 'snapshot.pem'), oldKey, { mode: 0o600 });
    for (const f of fs.readdirSync(meta))
      if (!oldFiles.has(f) && f !== '2.root.json') fs.rmSync(path.join(meta, f));
    fs.writeFileSync(path.join(meta, 'timestamp.json'), oldTimestamp);

    const again = new TufRepository(dir, clock);
    await again.open();
    expect(again.versions()).toMatchObject({ root: 2, snapshot: 2, timestamp: 2 });
    expect(fs.existsSync(path.join(keys, 'snapshot.pem.next'))).toBe(false);
    expect(signers('2.snapshot.json')).toEqual([ids.snapshot]);
  });

  it('a running repository picks up a rotation made by another process before it signs again', async () => {
    const clock = new ManualClock();
    const running = new TufRepository(dir, clock);
    await running.open();
    const tool = new TufRepository(dir, clock);
    await tool.open();
    const ids = await tool.rotateKeys(['timestamp']);
    await running.resignTimestamp();
    expect(running.versions()).toMatchObject({ root: 2, timestamp: tool.versions().timestamp + 1 });
    expect(signers('timestamp.json')).toEqual([ids.timestamp]);
  });

  it('drops a new key that no root lists (a rotation that stopped before its root)', async () => {
    await new TufRepository(dir, new ManualClock()).open();
    const keys = path.join(dir, 'keys');
    fs.copyFileSync(path.join(keys, 'root.pem'), path.join(keys, 'timestamp.pem.next'));
    const again = new TufRepository(dir, new ManualClock());
    await again.open();
    expect(fs.existsSync(path.join(keys, 'timestamp.pem.next'))).toBe(false);
    expect(again.versions()).toEqual({ root: 1, targets: 1, snapshot: 1, timestamp: 1 });
  });

  it('refuses to start with a key that the trusted root does not list', async () => {
    await new TufRepository(dir, new ManualClock()).open();
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'perch-tuf-other-'));
    try {
      await new TufRepository(other, new ManualClock()).open();
      fs.copyFileSync(path.join(other, 'keys', 'timestamp.pem'), path.join(dir, 'keys', 'timestamp.pem'));
      await expect(new TufRepository(dir, new ManualClock()).open()).rejects.toMatchObject({
        code: 'E_TUF_KEYS',
      });
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
