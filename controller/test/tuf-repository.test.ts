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
