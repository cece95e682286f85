import fs from 'node:fs';
import path from 'node:path';
import {
  PerchError,
  type Clock,
  type DesiredModel,
  type DesiredState,
  type ErrorCode,
  type Logger,
  type ReportedModel,
} from '@perch/shared';
import { Backoff } from '../backoff';
import type { Counters } from '../counters';
import type { Downloader } from '../downloader';
import { fsyncDir, readJsonIfExists, writeFileAtomic } from '../fs-atomic';
import { noKill, type KillPoint } from '../kill-hook';
import { sha256File, type ModelRef, type ModelStore } from '../model-store';
import type { ActiveModel, PipelineHost } from '../pipelines-port';
import type { Probation } from '../probation';
import type { ResolvedTarget, TargetResolver } from '../tuf-client';
import { failureKey, plan, type Failure, type ModelView, type PlanInput } from './planner';
import { signedSecurityVersion } from './security-version';
import { describeStep, runStep, type Executors, type Step, type StepOf } from './steps';

/** Codes that a later attempt may cure; all others wait for a different desired version. */
const RETRYABLE = new Set<string>([
  'E_DOWNLOAD_HTTP',
  'E_DOWNLOAD_DEADLINE',
  'E_DOWNLOAD_TOO_SLOW',
  'E_DOWNLOAD_TOO_LARGE',
  'E_UPDATE_METADATA',
  'E_UPDATE_METADATA_EXPIRED',
  'E_UPDATE_UNTRUSTED_TIME',
  'E_UPDATE_NO_SPACE',
  'E_UPDATE_HASH_MISMATCH',
  'E_UPDATE_TARGET_UNKNOWN',
  // Keyed by name@sha256 like every failure: a permanent one would block the same bundle for good
  // once a corrected desired state names it again.
  'E_UPDATE_SECURITY_VERSION_MISMATCH',
  'E_AGENT_STATE_DB',
  'E_INTERNAL',
]);

export interface ReconcilerOptions {
  maxTrialAttempts: number;
  /** Retry backoff for transient failures. */
  retryBaseMs: number;
  retryCapMs: number;
  /** Free bytes kept in the state folder beyond a download. */
  diskReserveBytes: number;
  /** Rounds of plan -> execute per run before giving up for this run (a guard against a planner bug). */
  maxRounds: number;
}

export const DEFAULT_RECONCILER_OPTIONS: ReconcilerOptions = {
  maxTrialAttempts: 3,
  retryBaseMs: 5_000,
  retryCapMs: 15 * 60_000,
  diskReserveBytes: 32 * 1024 * 1024,
  maxRounds: 50,
};

export interface ReconcileReport {
  rev: number;
  settled: boolean;
  models: ReportedModel[];
  untrustedTime: boolean;
}

export interface ReconcilerDeps {
  store: ModelStore;
  downloader: Downloader;
  /** Undefined until the agent is enrolled. */
  resolver: () => TargetResolver | undefined;
  probation: Probation;
  pipelines: PipelineHost;
  downloadsDir: string;
  /** Persisted permanent failures (so a bad bundle is not retried on every restart). */
  failuresFile: string;
  clock: Clock;
  logger: Logger;
  counters: Counters;
  killPoint?: KillPoint;
  /** Called after every change worth reporting. */
  onReport: (report: ReconcileReport) => void;
  options?: Partial<ReconcilerOptions>;
}

const PART_RE = /^([a-z0-9][a-z0-9-]{0,63})--([0-9a-f]{64})\.(part|verified)$/;

/**
 * The reconciler: one flight at a time. Every trigger (desired state, retry timer, command) goes
 * through `trigger()`; a trigger during a run sets a flag and the loop runs once more afterwards, so
 * any number of triggers during a run coalesce into one.
 */
export class Reconciler {
  private desired: DesiredState | undefined;
  private readonly failures = new Map<string, Failure>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly broken = new Set<string>();
  private readonly progress = new Map<string, { state: ReportedModel['state']; progress?: number }>();
  private appliedKey: string | undefined;
  private targets = new Map<string, ResolvedTarget>();
  private pending = false;
  private flight: Promise<void> | undefined;
  private retryTimer: unknown;
  private untrustedTime = false;
  private settled = false;
  private readonly abort = new AbortController();
  private readonly options: ReconcilerOptions;
  private readonly killPoint: KillPoint;
  private runs = 0;

  constructor(private readonly deps: ReconcilerDeps) {
    this.options = { ...DEFAULT_RECONCILER_OPTIONS, ...deps.options };
    this.killPoint = deps.killPoint ?? noKill;
    this.loadFailures();
  }

  setDesired(desired: DesiredState): boolean {
    if (this.desired && desired.rev < this.desired.rev) {
      this.deps.logger.warn('ignoring an older desired revision', {
        rev: desired.rev,
        have: this.desired.rev,
      });
      this.deps.counters.inc('desired.stale');
      return false;
    }
    this.desired = desired;
    this.settled = false;
    this.trigger();
    return true;
  }

  getDesired(): DesiredState | undefined {
    return this.desired;
  }

  /** Asks for a run. Never runs two at once; triggers during a run merge into one more run. */
  trigger(): void {
    this.pending = true;
    if (this.flight || this.abort.signal.aborted) return;
    this.flight = this.loop().finally(() => {
      this.flight = undefined;
    });
  }

  /** Resolves when no run is in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.flight) await this.flight;
  }

  runCount(): number {
    return this.runs;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.deps.clock.clearTimeout(this.retryTimer as never);
    await this.idle();
  }

  private async loop(): Promise<void> {
    while (this.pending && !this.abort.signal.aborted) {
      this.pending = false;
      this.runs++;
      try {
        await this.reconcileOnce();
      } catch (err) {
        // The executors catch their own errors; this is a bug guard so the loop survives.
        this.deps.counters.error('E_INTERNAL');
        this.deps.logger.error('reconcile run failed', { code: 'E_INTERNAL', err: String(err) });
      }
    }
  }

  private async reconcileOnce(): Promise<void> {
    this.targets = new Map();
    this.settled = false;
    this.deps.resolver()?.invalidate();
    let rounds = 0;
    for (; rounds < this.options.maxRounds && !this.abort.signal.aborted; rounds++) {
      const steps = plan(this.planInput());
      if (steps.length === 0) break;
      for (const step of steps) {
        if (this.abort.signal.aborted) return;
        await this.execute(step);
      }
    }
    if (rounds >= this.options.maxRounds) {
      this.deps.counters.error('E_INTERNAL');
      this.deps.logger.error('reconcile did not converge', { code: 'E_INTERNAL', rounds });
    }
    this.progress.clear();
    this.settled = !this.hasPendingRetry();
    this.report();
    this.scheduleRetry();
  }

  private hasPendingRetry(): boolean {
    return [...this.failures.values()].some((f) => f.retryAt !== undefined);
  }

  private scheduleRetry(): void {
    this.deps.clock.clearTimeout(this.retryTimer as never);
    const next = Math.min(...[...this.failures.values()].map((f) => f.retryAt ?? Infinity));
    if (!Number.isFinite(next)) return;
    this.retryTimer = this.deps.clock.setTimeout(
      () => this.trigger(),
      Math.max(0, next - this.deps.clock.now()),
    );
  }

  planInput(): PlanInput {
    const models: Record<string, ModelView> = {};
    const names = new Set([...(this.desired?.models.map((m) => m.name) ?? []), ...this.deps.store.names()]);
    for (const name of names) {
      models[name] = {
        pointers: this.deps.store.pointers(name),
        versions: this.listVersions(name),
        partials: {},
        verified: [],
      };
    }
    for (const entry of this.listDownloads()) {
      const view = models[entry.name];
      if (!view) continue;
      if (entry.kind === 'part') view.partials[entry.sha256] = entry.bytes;
      else view.verified.push(entry.sha256);
    }
    return {
      desired: this.desired,
      models,
      failures: Object.fromEntries(this.failures),
      broken: this.broken,
      appliedPipelinesKey: this.appliedKey,
      now: this.deps.clock.now(),
      maxTrialAttempts: this.options.maxTrialAttempts,
    };
  }

  private listVersions(name: string): string[] {
    try {
      return fs.readdirSync(path.dirname(this.deps.store.versionPath(name, '0'.repeat(64))));
    } catch {
      return [];
    }
  }

  private listDownloads(): Array<{ name: string; sha256: string; kind: string; bytes: number }> {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.deps.downloadsDir);
    } catch {
      return [];
    }
    const out = [];
    for (const entry of entries) {
      const m = PART_RE.exec(entry);
      if (!m) continue;
      let bytes: number;
      try {
        bytes = fs.statSync(path.join(this.deps.downloadsDir, entry)).size;
      } catch {
        continue;
      }
      out.push({ name: m[1]!, sha256: m[2]!, kind: m[3]!, bytes });
    }
    return out;
  }

  private partFile(model: DesiredModel, kind: 'part' | 'verified'): string {
    return path.join(this.deps.downloadsDir, `${model.name}--${model.sha256}.${kind}`);
  }

  private async execute(step: Step): Promise<void> {
    const log = this.deps.logger;
    log.info('step', { step: describeStep(step) });
    try {
      await runStep(this.executors, step);
    } catch (err) {
      const error =
        err instanceof PerchError
          ? err
          : new PerchError('E_INTERNAL', `step failed: ${String(err)}`, undefined, { cause: err });
      this.deps.counters.error(error.code);
      log.warn('step failed', { step: describeStep(step), code: error.code, err: error.message });
      const model = 'model' in step ? step.model : undefined;
      if (model) this.recordFailure(model, error);
      else if (step.kind === 'apply-pipelines') {
        // The host refused; retry this pipeline set later rather than spinning.
        this.appliedKey = step.key;
        this.deps.clock.setTimeout(() => {
          this.appliedKey = undefined;
          this.trigger();
        }, this.options.retryBaseMs);
      }
    }
  }

  private recordFailure(model: DesiredModel, error: PerchError): void {
    const key = failureKey(model.name, model.sha256);
    const failure: Failure = { code: error.code, message: error.message.slice(0, 500) };
    if (RETRYABLE.has(error.code)) {
      let backoff = this.backoffs.get(key);
      if (!backoff) {
        backoff = new Backoff({
          baseMs: this.options.retryBaseMs,
          capMs: this.options.retryCapMs,
          minMs: 1000,
        });
        this.backoffs.set(key, backoff);
      }
      failure.retryAt = this.deps.clock.now() + backoff.next();
    }
    if (error.code === 'E_UPDATE_UNTRUSTED_TIME') this.untrustedTime = true;
    this.failures.set(key, failure);
    this.progress.delete(model.name);
    this.saveFailures();
    this.report();
  }

  private clearFailure(model: DesiredModel): void {
    const key = failureKey(model.name, model.sha256);
    this.backoffs.delete(key);
    if (this.failures.delete(key)) this.saveFailures();
  }

  private loadFailures(): void {
    try {
      const data = readJsonIfExists(this.deps.failuresFile) as Record<string, Failure> | undefined;
      for (const [key, f] of Object.entries(data ?? {})) {
        if (typeof f?.code === 'string' && f.retryAt === undefined) this.failures.set(key, f);
      }
    } catch {
      this.deps.counters.error('E_AGENT_STATE_CORRUPT');
    }
  }

  private saveFailures(): void {
    const permanent = Object.fromEntries([...this.failures].filter(([, f]) => f.retryAt === undefined));
    try {
      writeFileAtomic(this.deps.failuresFile, JSON.stringify(permanent));
    } catch (err) {
      this.deps.logger.warn('cannot persist failures', { err: String(err) });
    }
  }

  private async target(model: DesiredModel): Promise<ResolvedTarget> {
    const cached = this.targets.get(model.target);
    if (cached) {
      signedSecurityVersion(model, cached.custom);
      return cached;
    }
    const resolver = this.deps.resolver();
    if (!resolver) throw new PerchError('E_AGENT_NOT_ENROLLED', 'no update metadata before enrollment');
    const target = await resolver.resolve(model.target);
    this.untrustedTime = false;
    if (target.sha256 !== model.sha256 || target.length !== model.length) {
      throw new PerchError(
        'E_UPDATE_TARGET_MISMATCH',
        `desired ${model.name} differs from its signed target`,
        {
          desired: { sha256: model.sha256, length: model.length },
          signed: { sha256: target.sha256, length: target.length },
        },
      );
    }
    signedSecurityVersion(model, target.custom);
    this.targets.set(model.target, target);
    return target;
  }

  /**
   * The ref that probation and activation persist. Its security version is the signed one: from the
   * trial pointer when this version is already on trial (it was taken from the signed target when the
   * trial began, so a crash during the trial can be recovered offline), else from the signed target.
   * A version already on disk (the previous one, or staged before a restart) never went through
   * `target()` in this run, so this is also where such a version meets its signed metadata.
   */
  private async signedRef(model: DesiredModel): Promise<ModelRef> {
    const trial = this.deps.store.pointers(model.name).trial;
    let securityVersion: number;
    if (trial?.sha256 === model.sha256) {
      securityVersion = signedSecurityVersion(model, { securityVersion: trial.securityVersion });
    } else {
      securityVersion = signedSecurityVersion(model, (await this.target(model)).custom);
    }
    return { sha256: model.sha256, version: model.version, securityVersion };
  }

  private setProgress(model: DesiredModel, state: ReportedModel['state'], progress?: number): void {
    this.progress.set(model.name, progress === undefined ? { state } : { state, progress });
    this.report();
  }

  private readonly executors: Executors = {
    download: async (step) => {
      const model = step.model;
      const target = await this.target(model);
      const partFile = this.partFile(model, 'part');
      let have = 0;
      try {
        have = fs.statSync(partFile).size;
      } catch {
        // fresh download
      }
      this.checkDiskSpace(model.length - have);
      this.setProgress(model, 'downloading', Math.floor((have * 100) / model.length));
      let lastPercent = -1;
      try {
        await this.deps.downloader.download({
          url: target.url,
          partFile,
          length: model.length,
          headers: this.deps.resolver()?.downloadHeaders() ?? {},
          signal: this.abort.signal,
          onProgress: (received, total) => {
            const percent = Math.floor((received * 100) / total);
            if (percent >= lastPercent + 5 || percent === 100) {
              lastPercent = percent;
              this.setProgress(model, 'downloading', percent);
            }
          },
        });
      } catch (err) {
        if (err instanceof PerchError && err.code === 'E_DOWNLOAD_TOO_LARGE')
          fs.rmSync(partFile, { force: true });
        throw err;
      }
    },
    verify: async (step) => {
      const model = step.model;
      this.setProgress(model, 'verifying');
      const partFile = this.partFile(model, 'part');
      const actual = await sha256File(partFile);
      if (actual !== model.sha256) {
        fs.rmSync(partFile, { force: true });
        throw new PerchError(
          'E_UPDATE_HASH_MISMATCH',
          `download of ${model.name} does not match its sha256`,
          {
            expected: model.sha256,
            actual,
          },
        );
      }
      const target = await this.target(model);
      try {
        await target.verify(partFile);
      } catch (err) {
        fs.rmSync(partFile, { force: true });
        throw err;
      }
      this.killPoint('verify');
      fs.renameSync(partFile, this.partFile(model, 'verified'));
      fsyncDir(this.deps.downloadsDir);
    },
    stage: (step) => {
      this.deps.store.stage(step.model.name, step.model.sha256, this.partFile(step.model, 'verified'));
      this.setProgress(step.model, 'staged');
      return Promise.resolve();
    },
    probation: async (step) => {
      const model = step.model;
      const ref = await this.signedRef(model);
      this.deps.store.beginTrial(model.name, ref);
      this.setProgress(model, 'trial');
      this.killPoint('probation');
      try {
        const loaded = await this.deps.store.load(model.name, ref);
        const report = await this.deps.probation.run(loaded);
        this.deps.logger.info('probation passed', { model: model.name, version: model.version, ...report });
      } catch (err) {
        // Nothing of a refused model stays behind; the current model was never touched.
        this.deps.store.clearTrial(model.name);
        fs.rmSync(this.deps.store.versionPath(model.name, model.sha256), { force: true });
        throw err;
      }
      this.deps.store.passTrial(model.name, model.sha256);
    },
    activate: async (step) => {
      this.deps.store.activate(step.model.name, await this.signedRef(step.model));
      this.clearFailure(step.model);
      this.deps.counters.inc('models.activated');
      this.deps.logger.info('model activated', { model: step.model.name, version: step.model.version });
      this.progress.delete(step.model.name);
    },
    reject: (step) => Promise.reject(new PerchError(step.code, step.message)),
    revert: (step) => {
      const store = this.deps.store;
      if (step.code === 'E_UPDATE_PROBATION_CRASHED') {
        store.clearTrial(step.name);
        if (step.sha256) fs.rmSync(store.versionPath(step.name, step.sha256), { force: true });
        const model = this.desired?.models.find((m) => m.name === step.name && m.sha256 === step.sha256);
        if (model) {
          this.recordFailure(
            model,
            new PerchError('E_UPDATE_PROBATION_CRASHED', 'the agent crashed repeatedly during the trial'),
          );
        }
      } else {
        const bad = store.pointers(step.name).current;
        const restored = store.revert(step.name);
        if (!restored) store.dropCurrent(step.name);
        if (bad) fs.rmSync(store.versionPath(step.name, bad.sha256), { force: true });
        this.broken.delete(step.name);
        this.deps.counters.error('E_UPDATE_ROLLBACK');
        this.deps.logger.error('active model failed its re-check; restored the previous one', {
          code: 'E_UPDATE_ROLLBACK',
          model: step.name,
          restored: restored?.version,
        });
      }
      return Promise.resolve();
    },
    collect: (step) => {
      const store = this.deps.store;
      const p = store.pointers(step.name);
      if (p.trial && p.trial.sha256 !== p.current?.sha256) store.clearTrial(step.name);
      store.collect(step.name);
      for (const entry of this.listDownloads()) {
        if (entry.name === step.name) {
          fs.rmSync(path.join(this.deps.downloadsDir, `${entry.name}--${entry.sha256}.${entry.kind}`), {
            force: true,
          });
        }
      }
      return Promise.resolve();
    },
    'apply-pipelines': async (step) => this.applyPipelines(step),
  };

  private async applyPipelines(step: StepOf<'apply-pipelines'>): Promise<void> {
    const active = new Map<string, ActiveModel>();
    for (const [name, ref] of Object.entries(step.models)) {
      try {
        const loaded = await this.deps.store.load(name, ref);
        const labels = loaded.files.labels
          .toString('utf8')
          .split(/\r?\n/)
          .filter((l) => l.length > 0);
        let spec: unknown;
        try {
          spec = JSON.parse(loaded.files.spec.toString('utf8'));
        } catch {
          spec = undefined;
        }
        active.set(name, {
          name,
          version: ref.version,
          sha256: ref.sha256,
          bundle: { name, version: ref.version, model: new Uint8Array(loaded.files.model), spec, labels },
        });
      } catch (err) {
        if (err instanceof PerchError && err.code === 'E_UPDATE_MODEL_TAMPERED') {
          this.broken.add(name);
          this.deps.counters.error('E_UPDATE_MODEL_TAMPERED');
          this.deps.logger.error('installed model failed its re-check', { code: err.code, model: name });
          return; // the next round plans a revert
        }
        throw err;
      }
    }
    await this.deps.pipelines.apply(step.pipelines, active);
    this.appliedKey = step.key;
  }

  private checkDiskSpace(needed: number): void {
    let free: number;
    try {
      fs.mkdirSync(this.deps.downloadsDir, { recursive: true });
      const s = fs.statfsSync(this.deps.downloadsDir);
      free = s.bavail * s.bsize;
    } catch {
      return;
    }
    if (free < needed + this.options.diskReserveBytes) {
      throw new PerchError('E_UPDATE_NO_SPACE', `need ${needed} bytes plus reserve, ${free} free`, {
        needed,
        free,
      });
    }
  }

  /** The models part of the reported state. */
  reportedModels(): ReportedModel[] {
    const out: ReportedModel[] = [];
    const store = this.deps.store;
    for (const model of this.desired?.models ?? []) {
      const p = store.pointers(model.name);
      const failure = this.failures.get(failureKey(model.name, model.sha256));
      const base = {
        name: model.name,
        version: model.version,
        sha256: model.sha256,
        securityVersion: model.securityVersion,
      };
      if (p.current?.sha256 === model.sha256) {
        out.push({ ...base, state: 'active' });
        continue;
      }
      const progress = this.progress.get(model.name);
      if (failure) {
        out.push({
          ...base,
          state: 'failed',
          error: { code: failure.code as ErrorCode, message: failure.message },
        });
      } else if (progress) {
        out.push({
          ...base,
          state: progress.state,
          ...(progress.progress !== undefined ? { progress: progress.progress } : {}),
        });
      } else if (p.trial?.sha256 === model.sha256) {
        out.push({ ...base, state: 'trial' });
      } else out.push({ ...base, state: 'pending' });
      if (p.current) {
        out.push({
          name: model.name,
          version: p.current.version,
          sha256: p.current.sha256,
          securityVersion: p.current.securityVersion,
          state: 'active',
        });
      }
    }
    return out;
  }

  private report(): void {
    try {
      this.deps.onReport({
        rev: this.desired?.rev ?? 0,
        settled: this.settled && !this.flightBusy(),
        models: this.reportedModels(),
        untrustedTime: this.untrustedTime,
      });
    } catch (err) {
      this.deps.logger.warn('report failed', { err: String(err) });
    }
  }

  private flightBusy(): boolean {
    return this.pending;
  }

  isSettled(): boolean {
    return this.settled && !this.flight;
  }
}
