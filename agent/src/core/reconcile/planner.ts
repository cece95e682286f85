import type { DesiredModel, DesiredState } from '@perch/shared';
import type { ModelRef, Pointers } from '../model-store';
import type { Step } from './steps';

/** What the store holds for one model name. */
export interface ModelView {
  pointers: Pointers;
  /** sha256 values under versions/. */
  versions: string[];
  /** Durable partial downloads by sha256: bytes on disk. */
  partials: Record<string, number>;
  /** sha256 values whose download is complete and verified, waiting to be staged. */
  verified: string[];
}

/** A failed attempt at one desired model version (keyed `name@sha256`). */
export interface Failure {
  code: string;
  message: string;
  /** Permanent failures wait for a different desired version; others are retried at `retryAt`. */
  retryAt?: number;
}

export interface PlanInput {
  desired: DesiredState | undefined;
  models: Readonly<Record<string, ModelView>>;
  failures: Readonly<Record<string, Failure>>;
  /** Models whose current version failed its re-check before loading. */
  broken: ReadonlySet<string>;
  /** Key of the pipeline set last handed to the pipeline host. */
  appliedPipelinesKey: string | undefined;
  now: number;
  maxTrialAttempts: number;
}

export const failureKey = (name: string, sha256: string) => `${name}@${sha256}`;

const EMPTY_VIEW: ModelView = { pointers: { securityVersion: 0 }, versions: [], partials: {}, verified: [] };

/** Whether a failure still blocks its model version at `now`. */
export function blocking(failure: Failure | undefined, now: number): boolean {
  return failure !== undefined && (failure.retryAt === undefined || now < failure.retryAt);
}

function nextModelStep(model: DesiredModel, view: ModelView, input: PlanInput): Step | undefined {
  const p = view.pointers;
  if (input.broken.has(model.name)) {
    return { kind: 'revert', name: model.name, code: 'E_UPDATE_MODEL_TAMPERED' };
  }
  if (p.current?.sha256 === model.sha256) {
    const extra =
      view.versions.some((v) => v !== p.current?.sha256 && v !== p.previous?.sha256) ||
      p.trial !== undefined ||
      Object.keys(view.partials).length > 0 ||
      view.verified.length > 0;
    return extra ? { kind: 'collect', name: model.name } : undefined;
  }
  if (blocking(input.failures[failureKey(model.name, model.sha256)], input.now)) return undefined;
  // A first filter on the unsigned desired value, so that an older version is refused before any
  // download. The value that counts is the signed one: the reconciler refuses a desired state that
  // differs from it (E_UPDATE_SECURITY_VERSION_MISMATCH) and persists only the signed one.
  if (model.securityVersion < p.securityVersion) {
    return {
      kind: 'reject',
      model,
      code: 'E_UPDATE_SECURITY_VERSION',
      message: `security version ${model.securityVersion} is lower than the installed ${p.securityVersion}`,
    };
  }
  if (p.trial?.sha256 === model.sha256) {
    if (p.trial.passed) return { kind: 'activate', model };
    if (p.trial.attempts >= input.maxTrialAttempts) {
      return { kind: 'revert', name: model.name, code: 'E_UPDATE_PROBATION_CRASHED', sha256: model.sha256 };
    }
    return { kind: 'probation', model };
  }
  if (view.versions.includes(model.sha256)) return { kind: 'probation', model };
  if (view.verified.includes(model.sha256)) return { kind: 'stage', model };
  if (view.partials[model.sha256] === model.length) return { kind: 'verify', model };
  return { kind: 'download', model };
}

/** Stable key of what the pipeline host should run: the pipeline configs and the active model versions. */
export function pipelinesKey(desired: DesiredState, models: Record<string, ModelRef>): string {
  const refs = Object.keys(models)
    .sort()
    .map((n) => `${n}=${models[n]!.sha256}`);
  return JSON.stringify([desired.pipelines, refs]);
}

/**
 * The planner: current and desired state in, the next steps out. Pure: it reads nothing but its input,
 * so every decision can be tested with plain objects. At most one step per model per round; the
 * reconciler runs them and plans again until nothing is left.
 */
export function plan(input: PlanInput): Step[] {
  const desired = input.desired;
  if (!desired) return [];
  const steps: Step[] = [];
  for (const model of desired.models) {
    const step = nextModelStep(model, input.models[model.name] ?? EMPTY_VIEW, input);
    if (step) steps.push(step);
  }
  // Pipelines follow once no model is still moving: they run on whatever is current.
  const moving = steps.some((s) => s.kind !== 'collect');
  if (!moving) {
    const models: Record<string, ModelRef> = {};
    for (const model of desired.models) {
      const current = (input.models[model.name] ?? EMPTY_VIEW).pointers.current;
      if (current) models[model.name] = current;
    }
    const key = pipelinesKey(desired, models);
    if (key !== input.appliedPipelinesKey) {
      steps.push({ kind: 'apply-pipelines', pipelines: [...desired.pipelines], models, key });
    }
  }
  return steps;
}
