import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  Metadata,
  MetaFile,
  Root,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
  MetadataKind,
} from '@tufjs/models';
import { PerchError, type Clock } from '@perch/shared';
import { loadRoleKeys, signerFor, ROLE_NAMES, type RoleKey, type RoleName } from './keys';

type JSONObject = Parameters<typeof Metadata.fromJSON>[1];

const DAY = 24 * 3600 * 1000;

export interface TufLifetimes {
  rootMs: number;
  targetsMs: number;
  snapshotMs: number;
  timestampMs: number;
}

export const DEFAULT_LIFETIMES: TufLifetimes = {
  rootMs: 365 * DAY,
  targetsMs: 90 * DAY,
  snapshotMs: 30 * DAY,
  timestampMs: DAY,
};

/**
 * The controller's TUF repository: one Ed25519 key per role (threshold 1), consistent snapshots,
 * metadata files kept for every version in `<dir>/metadata`, keys in `<dir>/keys` (0600).
 * Every change re-signs targets -> snapshot -> timestamp in that order and writes each file
 * atomically before the next, so a reader never sees a timestamp pointing at a missing snapshot.
 */
export class TufRepository {
  private keys!: Record<RoleName, RoleKey>;
  private root!: Metadata<Root>;
  private targets!: Metadata<Targets>;
  private snapshot!: Metadata<Snapshot>;
  private timestamp!: Metadata<Timestamp>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly lifetimes: TufLifetimes = DEFAULT_LIFETIMES,
  ) {}

  get metadataDir(): string {
    return path.join(this.dir, 'metadata');
  }

  private expires(ms: number): string {
    return new Date(this.clock.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** Loads the repository, creating keys and version 1 of every role on first use. */
  async open(): Promise<void> {
    await fs.mkdir(this.metadataDir, { recursive: true });
    const rootVersion = await this.latest('root');
    this.keys = await loadRoleKeys(path.join(this.dir, 'keys'), rootVersion === 0);
    if (rootVersion === 0) {
      const root = new Root({
        version: 1,
        specVersion: '1.0.31',
        expires: this.expires(this.lifetimes.rootMs),
        consistentSnapshot: true,
      });
      for (const role of ROLE_NAMES) root.addKey(this.keys[role].key, role);
      this.root = new Metadata(root);
      this.root.sign(signerFor(this.keys.root));
      await this.write('1.root.json', this.root);
      this.targets = new Metadata(
        new Targets({ version: 1, specVersion: '1.0.31', expires: this.expires(this.lifetimes.targetsMs) }),
      );
      this.targets.sign(signerFor(this.keys.targets));
      await this.write('1.targets.json', this.targets);
      await this.publishSnapshotAndTimestamp(1, 1);
      return;
    }
    this.root = Metadata.fromJSON(MetadataKind.Root, await this.readJson(`${rootVersion}.root.json`));
    for (const role of ROLE_NAMES) {
      const want = this.root.signed.roles[role]?.keyIDs ?? [];
      if (!want.includes(this.keys[role].key.keyID))
        throw new PerchError('E_TUF_KEYS', `the ${role} key does not match the trusted root`);
    }
    this.targets = Metadata.fromJSON(
      MetadataKind.Targets,
      await this.readJson(`${await this.latest('targets')}.targets.json`),
    );
    this.snapshot = Metadata.fromJSON(
      MetadataKind.Snapshot,
      await this.readJson(`${await this.latest('snapshot')}.snapshot.json`),
    );
    this.timestamp = Metadata.fromJSON(MetadataKind.Timestamp, await this.readJson('timestamp.json'));
  }

  /** The current root, for devices to pin at enrollment. */
  async trustedRoot(): Promise<unknown> {
    return this.root.toJSON();
  }

  /** Adds (or replaces) targets and publishes new targets, snapshot and timestamp versions. */
  addTargets(
    entries: ReadonlyArray<{
      path: string;
      length: number;
      sha256: string;
      custom?: Record<string, unknown>;
    }>,
  ): Promise<void> {
    return this.serial(async () => {
      const t = this.targets.signed;
      const files: Record<string, TargetFile> = { ...t.targets };
      for (const e of entries) {
        files[e.path] = new TargetFile({
          path: e.path,
          length: e.length,
          hashes: { sha256: e.sha256 },
          ...(e.custom ? { unrecognizedFields: { custom: e.custom as JSONObject } } : {}),
        });
      }
      await this.publishTargets(files);
    });
  }

  /** Looks up a target by path and hash (the consistent-snapshot file name). */
  findTarget(targetPath: string, sha256: string): TargetFile | undefined {
    const t = this.targets.signed.targets[targetPath];
    return t && t.hashes.sha256 === sha256 ? t : undefined;
  }

  /**
   * Re-signs what is close to expiry: the timestamp when less than half its life is left, root, snapshot
   * and targets when less than a third. Called by the cron job; safe to call any time.
   */
  refresh(): Promise<{ root: boolean; timestamp: boolean; snapshot: boolean; targets: boolean }> {
    return this.serial(async () => {
      const now = this.clock.now();
      const left = (md: { signed: { expires: string } }) => Date.parse(md.signed.expires) - now;
      const root = left(this.root) < this.lifetimes.rootMs / 3;
      if (root) await this.publishRoot();
      const out = { root, timestamp: false, snapshot: false, targets: false };
      if (left(this.targets) < this.lifetimes.targetsMs / 3) {
        await this.publishTargets({ ...this.targets.signed.targets });
        return { root, timestamp: true, snapshot: true, targets: true };
      }
      if (left(this.snapshot) < this.lifetimes.snapshotMs / 3) {
        await this.publishSnapshotAndTimestamp(this.targets.signed.version, this.snapshot.signed.version + 1);
        return { root, timestamp: true, snapshot: true, targets: false };
      }
      if (left(this.timestamp) < this.lifetimes.timestampMs / 2) {
        await this.publishTimestamp(this.snapshot.signed.version, this.timestamp.signed.version + 1);
        out.timestamp = true;
      }
      return out;
    });
  }

  /** Forces a new timestamp now (tests, and the operator after a clock fix). */
  resignTimestamp(): Promise<void> {
    return this.serial(() =>
      this.publishTimestamp(this.snapshot.signed.version, this.timestamp.signed.version + 1),
    );
  }

  versions(): Record<RoleName, number> {
    return {
      root: this.root.signed.version,
      targets: this.targets.signed.version,
      snapshot: this.snapshot.signed.version,
      timestamp: this.timestamp.signed.version,
    };
  }

  /**
   * Publishes the next root version: same keys and thresholds, a new expiry, signed by the root key.
   * Devices never re-enroll: tuf-js walks from the root they pinned through `<N+1>.root.json`, each
   * checked against the keys of the one before, so the chain must be renewed before the newest root
   * expires (an expired root in the middle of the chain is fine, an expired newest one is not).
   */
  private async publishRoot(): Promise<void> {
    const version = this.root.signed.version + 1;
    const next = Root.fromJSON({
      ...(this.root.signed.toJSON() as JSONObject),
      version,
      expires: this.expires(this.lifetimes.rootMs),
    });
    const md = new Metadata(next);
    md.sign(signerFor(this.keys.root));
    await this.write(`${version}.root.json`, md);
    this.root = md;
  }

  private async publishTargets(files: Record<string, TargetFile>): Promise<void> {
    const version = this.targets.signed.version + 1;
    const md = new Metadata(
      new Targets({
        version,
        specVersion: '1.0.31',
        expires: this.expires(this.lifetimes.targetsMs),
        targets: files,
      }),
    );
    md.sign(signerFor(this.keys.targets));
    await this.write(`${version}.targets.json`, md);
    this.targets = md;
    await this.publishSnapshotAndTimestamp(version, this.snapshot ? this.snapshot.signed.version + 1 : 1);
  }

  private async publishSnapshotAndTimestamp(targetsVersion: number, snapshotVersion: number): Promise<void> {
    const md = new Metadata(
      new Snapshot({
        version: snapshotVersion,
        specVersion: '1.0.31',
        expires: this.expires(this.lifetimes.snapshotMs),
        meta: { 'targets.json': new MetaFile({ version: targetsVersion }) },
      }),
    );
    md.sign(signerFor(this.keys.snapshot));
    await this.write(`${snapshotVersion}.snapshot.json`, md);
    this.snapshot = md;
    await this.publishTimestamp(snapshotVersion, this.timestamp ? this.timestamp.signed.version + 1 : 1);
  }

  private async publishTimestamp(snapshotVersion: number, version: number): Promise<void> {
    const md = new Metadata(
      new Timestamp({
        version,
        specVersion: '1.0.31',
        expires: this.expires(this.lifetimes.timestampMs),
        snapshotMeta: new MetaFile({ version: snapshotVersion }),
      }),
    );
    md.sign(signerFor(this.keys.timestamp));
    await this.write('timestamp.json', md);
    this.timestamp = md;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async latest(role: RoleName): Promise<number> {
    const names = await fs.readdir(this.metadataDir).catch(() => [] as string[]);
    let max = 0;
    for (const n of names) {
      const m = /^(\d+)\.(\w+)\.json$/.exec(n);
      if (m && m[2] === role) max = Math.max(max, Number(m[1]));
    }
    return max;
  }

  private async readJson(name: string): Promise<JSONObject> {
    return JSON.parse(await fs.readFile(path.join(this.metadataDir, name), 'utf8')) as JSONObject;
  }

  private async write(name: string, md: { toJSON(): unknown }): Promise<void> {
    const tmp = path.join(this.metadataDir, `.tmp-${randomBytes(6).toString('hex')}`);
    const fh = await fs.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(JSON.stringify(md.toJSON()));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path.join(this.metadataDir, name));
  }
}

/** Metadata file names the server may serve. */
export const METADATA_FILE = /^(?:\d{1,10}\.(?:root|snapshot|targets)|timestamp)\.json$/;
