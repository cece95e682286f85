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
import {
  loadRoleKeys,
  nextKeyFile,
  roleKeyFromPem,
  signerFor,
  writeNewKey,
  ROLE_NAMES,
  type RoleKey,
  type RoleName,
} from './keys';

/** Roles whose key `rotateKeys` replaces; the root key signs every root and is not rotated here. */
export type RotatableRole = Exclude<RoleName, 'root'>;

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

  private get keysDir(): string {
    return path.join(this.dir, 'keys');
  }

  private expires(ms: number): string {
    return new Date(this.clock.now() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  /** Loads the repository, creating keys and version 1 of every role on first use. */
  async open(): Promise<void> {
    await fs.mkdir(this.metadataDir, { recursive: true });
    const rootVersion = await this.latest('root');
    this.keys = await loadRoleKeys(this.keysDir, rootVersion === 0);
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
    await this.finishKeyRotation();
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
    // A rotation cut short after its root: the other roles are still signed by the replaced keys.
    const signedBy = (md: { signatures: Record<string, unknown> }, role: RoleName) =>
      Object.keys(md.signatures).includes(this.keys[role].key.keyID);
    if (
      !signedBy(this.targets, 'targets') ||
      !signedBy(this.snapshot, 'snapshot') ||
      !signedBy(this.timestamp, 'timestamp')
    ) {
      await this.publishTargets({ ...this.targets.signed.targets });
    }
  }

  /**
   * Replaces the keys of `roles` (a leaked or retired online key). In order, each step durable before the
   * next: the new keys are written beside the old ones (`<role>.pem.next`); the next root version lists
   * them instead of the old ones, signed by the root key; the new keys replace the old files; targets,
   * snapshot and timestamp are re-signed with them. tuf-js follows the new root from any older one, then
   * refuses metadata signed by a removed key; after a timestamp or snapshot key change it also drops the
   * versions it trusted, which recovers devices from a fast-forward attack. `open()` finishes a rotation
   * that a crash cut short. Returns the new key ids.
   */
  rotateKeys(roles: readonly RotatableRole[]): Promise<Partial<Record<RotatableRole, string>>> {
    return this.serial(async () => {
      if (roles.length === 0) throw new PerchError('E_TUF_KEYS', 'no role to rotate');
      for (const role of roles) {
        if (!(ROLE_NAMES as readonly string[]).includes(role) || role === ('root' as RoleName))
          throw new PerchError('E_TUF_KEYS', `cannot rotate the key of role ${String(role)}`);
      }
      const fresh: Partial<Record<RotatableRole, RoleKey>> = {};
      for (const role of new Set(roles)) fresh[role] = await writeNewKey(nextKeyFile(this.keysDir, role));
      await syncDir(this.keysDir);

      const version = this.root.signed.version + 1;
      const json = this.root.signed.toJSON() as {
        keys: Record<string, unknown>;
        roles: Record<string, { keyids: string[]; threshold: number }>;
      };
      for (const [role, key] of Object.entries(fresh) as Array<[RotatableRole, RoleKey]>) {
        const old = this.keys[role].key.keyID;
        json.roles[role] = { ...json.roles[role]!, keyids: [key.key.keyID] };
        json.keys[key.key.keyID] = key.key.toJSON();
        if (!Object.values(json.roles).some((r) => r.keyids.includes(old))) delete json.keys[old];
      }
      const md = new Metadata(
        Root.fromJSON({
          ...(json as unknown as JSONObject),
          version,
          expires: this.expires(this.lifetimes.rootMs),
        }),
      );
      md.sign(signerFor(this.keys.root));
      await this.write(`${version}.root.json`, md);
      this.root = md;

      await this.finishKeyRotation();
      await this.publishTargets({ ...this.targets.signed.targets });
      return Object.fromEntries(Object.entries(fresh).map(([role, key]) => [role, key.key.keyID]));
    });
  }

  /** Moves `<role>.pem.next` into place when the trusted root lists it, and drops it when it does not. */
  private async finishKeyRotation(): Promise<void> {
    let moved = false;
    for (const role of ROLE_NAMES) {
      const next = nextKeyFile(this.keysDir, role);
      let pem: string;
      try {
        pem = await fs.readFile(next, 'utf8');
      } catch {
        continue;
      }
      const key = roleKeyFromPem(pem, next);
      if (this.root.signed.roles[role]?.keyIDs.includes(key.key.keyID)) {
        await fs.rename(next, path.join(this.keysDir, `${role}.pem`));
        this.keys[role] = key;
      } else {
        await fs.rm(next, { force: true });
      }
      moved = true;
    }
    if (moved) await syncDir(this.keysDir);
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
    const guarded = async () => {
      // `perch-controller rotate-keys` may have written a new root and keys beside a running controller:
      // sign nothing with keys the newest root no longer lists.
      if ((await this.latest('root')) > this.root.signed.version) await this.open();
      return fn();
    };
    const run = this.chain.then(guarded, guarded);
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

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Metadata file names the server may serve. */
export const METADATA_FILE = /^(?:\d{1,10}\.(?:root|snapshot|targets)|timestamp)\.json$/;
