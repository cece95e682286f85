import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isValidId, PerchError, type Logger } from '@perch/shared';
import { parseBundle, type BundleFiles } from './bundle';
import type { Counters } from './counters';
import { fsyncDir, fsyncFile } from './fs-atomic';
import { noKill, type KillPoint } from './kill-hook';

export interface ModelRef {
  sha256: string;
  version: string;
  securityVersion: number;
}

export interface TrialRef extends ModelRef {
  /** Probation runs started for this trial; a run that crashed the agent never cleared it. */
  attempts: number;
  /** Set when probation passed; activation is then the only step left (survives a crash in between). */
  passed?: boolean;
}

/** One model's pointers, replaced as a whole by rename so that current and previous switch together. */
export interface Pointers {
  current?: ModelRef;
  previous?: ModelRef;
  trial?: TrialRef;
  /** Highest security version ever activated; never decreases. */
  securityVersion: number;
}

export interface LoadedModel {
  name: string;
  ref: ModelRef;
  files: BundleFiles;
}

const SHA256 = /^[0-9a-f]{64}$/;

function isRef(v: unknown): v is ModelRef {
  const r = v as ModelRef;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.sha256 === 'string' &&
    SHA256.test(r.sha256) &&
    typeof r.version === 'string' &&
    Number.isInteger(r.securityVersion)
  );
}

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The model store: `<root>/<name>/versions/<sha256>` holds verified bundles, `<root>/<name>/pointers.json`
 * says which is current, previous and on trial. Files are fsynced before their rename and folders
 * after it, so a power cut at any moment leaves a whole, verified model behind the `current` pointer.
 */
export class ModelStore {
  constructor(
    private readonly root: string,
    private readonly logger: Logger,
    private readonly counters: Counters,
    private readonly killPoint: KillPoint = noKill,
  ) {}

  private modelDir(name: string): string {
    if (!isValidId(name))
      throw new PerchError('E_INVALID_ID', `model name ${JSON.stringify(name)} is not an id`);
    return path.join(this.root, name);
  }

  versionPath(name: string, sha256: string): string {
    if (!SHA256.test(sha256)) throw new PerchError('E_INVALID_ID', 'not a sha256');
    return path.join(this.modelDir(name), 'versions', sha256);
  }

  names(): string[] {
    try {
      return fs.readdirSync(this.root).filter((n) => isValidId(n));
    } catch {
      return [];
    }
  }

  pointers(name: string): Pointers {
    const file = path.join(this.modelDir(name), 'pointers.json');
    let raw: string;
    try {
      raw = fs.readFileSync(file, 'utf8');
    } catch {
      return { securityVersion: 0 };
    }
    try {
      const v = JSON.parse(raw) as Record<string, unknown>;
      const out: Pointers = {
        securityVersion: Number.isInteger(v.securityVersion) ? (v.securityVersion as number) : 0,
      };
      if (isRef(v.current)) out.current = v.current;
      if (isRef(v.previous)) out.previous = v.previous;
      if (isRef(v.trial)) {
        const t = v.trial as TrialRef;
        out.trial = {
          sha256: t.sha256,
          version: t.version,
          securityVersion: t.securityVersion,
          attempts: Number(t.attempts) || 0,
          ...(t.passed === true ? { passed: true } : {}),
        };
      }
      return out;
    } catch {
      // Cannot happen with rename-based writes unless the medium fails; recover what the folder holds.
      this.counters.error('E_AGENT_STATE_CORRUPT');
      this.logger.error('model pointers unreadable', { code: 'E_AGENT_STATE_CORRUPT', model: name });
      return { securityVersion: 0 };
    }
  }

  private writePointers(name: string, pointers: Pointers, step: string): void {
    const dir = this.modelDir(name);
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'pointers.json');
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, JSON.stringify(pointers));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.killPoint(step);
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  }

  hasVersion(name: string, sha256: string): boolean {
    return fs.existsSync(this.versionPath(name, sha256));
  }

  /** Moves a verified download into `versions/<sha256>`: fsync file, rename, fsync folder. */
  stage(name: string, sha256: string, verifiedFile: string): void {
    const target = this.versionPath(name, sha256);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fsyncFile(verifiedFile);
    fs.renameSync(verifiedFile, target);
    this.killPoint('stage');
    fsyncDir(path.dirname(target));
    fsyncDir(path.dirname(verifiedFile));
  }

  /** Records the start of a probation run; persisted first so that a crash during it is counted. */
  beginTrial(name: string, ref: ModelRef): TrialRef {
    const p = this.pointers(name);
    const attempts = p.trial && p.trial.sha256 === ref.sha256 ? p.trial.attempts + 1 : 1;
    const trial: TrialRef = {
      sha256: ref.sha256,
      version: ref.version,
      securityVersion: ref.securityVersion,
      attempts,
    };
    this.writePointers(name, { ...p, trial }, 'trial-pointer');
    return trial;
  }

  /** Marks the trial as passed, so that a crash before activation does not repeat the probation. */
  passTrial(name: string, sha256: string): void {
    const p = this.pointers(name);
    if (!p.trial || p.trial.sha256 !== sha256) return;
    this.writePointers(name, { ...p, trial: { ...p.trial, passed: true } }, 'trial-passed');
  }

  clearTrial(name: string): void {
    const p = this.pointers(name);
    if (!p.trial) return;
    const { trial: _trial, ...rest } = p;
    this.writePointers(name, rest, 'clear-trial');
  }

  /** Makes `ref` current and the old current previous, in one rename. Refuses a lower security version. */
  activate(name: string, ref: ModelRef): void {
    const p = this.pointers(name);
    if (ref.securityVersion < p.securityVersion) {
      throw new PerchError(
        'E_UPDATE_SECURITY_VERSION',
        `security version ${ref.securityVersion} is lower than ${p.securityVersion}`,
      );
    }
    const next: Pointers = {
      current: ref,
      securityVersion: Math.max(p.securityVersion, ref.securityVersion),
    };
    const previous = p.current && p.current.sha256 !== ref.sha256 ? p.current : p.previous;
    if (previous && previous.sha256 !== ref.sha256) next.previous = previous;
    this.writePointers(name, next, 'activate');
  }

  /** Puts previous back as current (its own security version is not checked: it was trusted before). */
  revert(name: string): ModelRef | undefined {
    const p = this.pointers(name);
    if (!p.previous) return undefined;
    this.writePointers(name, { current: p.previous, securityVersion: p.securityVersion }, 'revert');
    return p.previous;
  }

  /** Forgets the current model (it failed verification and there is nothing to fall back to). */
  dropCurrent(name: string): void {
    const p = this.pointers(name);
    const next: Pointers = { securityVersion: p.securityVersion };
    if (p.previous) next.current = p.previous;
    this.writePointers(name, next, 'drop-current');
  }

  /**
   * Reads a version, re-checks its sha256 and parses the bundle. Throws E_UPDATE_MODEL_TAMPERED when the
   * bytes on disk no longer match, E_UPDATE_BUNDLE_INVALID when the archive is malformed.
   */
  async load(name: string, ref: ModelRef): Promise<LoadedModel> {
    const file = this.versionPath(name, ref.sha256);
    let data: Buffer;
    try {
      data = await fs.promises.readFile(file);
    } catch (err) {
      throw new PerchError(
        'E_UPDATE_MODEL_TAMPERED',
        `model ${name} ${ref.version} is missing: ${String(err)}`,
      );
    }
    const actual = crypto.createHash('sha256').update(data).digest('hex');
    if (actual !== ref.sha256) {
      this.counters.error('E_UPDATE_MODEL_TAMPERED');
      throw new PerchError(
        'E_UPDATE_MODEL_TAMPERED',
        `model ${name} ${ref.version} does not match its sha256`,
        {
          expected: ref.sha256,
          actual,
        },
      );
    }
    return { name, ref, files: parseBundle(data) };
  }

  /** Deletes versions that are neither current, previous nor on trial, and stray temporary files. */
  collect(name: string): string[] {
    const p = this.pointers(name);
    const keep = new Set([p.current?.sha256, p.previous?.sha256, p.trial?.sha256].filter(Boolean));
    const dir = path.join(this.modelDir(name), 'versions');
    const removed: string[] = [];
    let entries: string[];
    try {
      entries = fs.readdirSync(dir);
    } catch {
      return removed;
    }
    for (const entry of entries) {
      if (keep.has(entry)) continue;
      fs.rmSync(path.join(dir, entry), { force: true, recursive: true });
      removed.push(entry);
      this.killPoint('collect');
    }
    if (removed.length) fsyncDir(dir);
    return removed;
  }

  /** Removes a model that is no longer desired, entirely. */
  remove(name: string): void {
    fs.rmSync(this.modelDir(name), { recursive: true, force: true });
    fsyncDir(this.root);
  }
}
