import { failureKey, plan, type ModelView, type PlanInput } from '../../src/core/reconcile/planner';
import { desiredModel, desiredState } from './helpers';

const m1 = desiredModel('faces', '1.0.0', { securityVersion: 1 });
const m2 = desiredModel('faces', '2.0.0', { securityVersion: 2 });
const ref = (m: typeof m1) => ({ sha256: m.sha256, version: m.version, securityVersion: m.securityVersion });

function view(partial: Partial<ModelView> = {}): ModelView {
  return { pointers: { securityVersion: 0 }, versions: [], partials: {}, verified: [], ...partial };
}

function input(partial: Partial<PlanInput>): PlanInput {
  return {
    desired: desiredState([m2]),
    models: {},
    failures: {},
    broken: new Set(),
    appliedPipelinesKey: undefined,
    now: 1000,
    maxTrialAttempts: 3,
    ...partial,
  };
}

const kinds = (i: PlanInput) => plan(i).map((s) => s.kind);
/** Model steps only (pipelines are applied whenever nothing moves). */
const modelKinds = (i: PlanInput) => kinds(i).filter((k) => k !== 'apply-pipelines');

describe('plan', () => {
  it('plans nothing without a desired state', () => {
    expect(plan(input({ desired: undefined }))).toEqual([]);
  });

  it('downloads a model that is not on the device', () => {
    expect(kinds(input({}))).toEqual(['download']);
  });

  it('resumes a partial download and verifies a complete one', () => {
    expect(kinds(input({ models: { faces: view({ partials: { [m2.sha256]: 10 } }) } }))).toEqual([
      'download',
    ]);
    expect(kinds(input({ models: { faces: view({ partials: { [m2.sha256]: m2.length } }) } }))).toEqual([
      'verify',
    ]);
  });

  it('stages a verified download, then puts it on probation', () => {
    expect(kinds(input({ models: { faces: view({ verified: [m2.sha256] }) } }))).toEqual(['stage']);
    expect(kinds(input({ models: { faces: view({ versions: [m2.sha256] }) } }))).toEqual(['probation']);
  });

  it('activates a trial that passed, and retries one that did not finish', () => {
    const trial = { ...ref(m2), attempts: 1 };
    const pointers = { current: ref(m1), securityVersion: 1 };
    expect(
      kinds(
        input({
          models: {
            faces: view({
              versions: [m1.sha256, m2.sha256],
              pointers: { ...pointers, trial: { ...trial, passed: true } },
            }),
          },
        }),
      ),
    ).toEqual(['activate']);
    expect(
      kinds(input({ models: { faces: view({ versions: [m2.sha256], pointers: { ...pointers, trial } }) } })),
    ).toEqual(['probation']);
  });

  it('gives up a trial after repeated crashes and reports it', () => {
    const steps = plan(
      input({
        models: {
          faces: view({
            pointers: { current: ref(m1), securityVersion: 1, trial: { ...ref(m2), attempts: 3 } },
          }),
        },
      }),
    );
    expect(steps).toEqual([
      { kind: 'revert', name: 'faces', code: 'E_UPDATE_PROBATION_CRASHED', sha256: m2.sha256 },
    ]);
  });

  it('refuses a lower security version without downloading', () => {
    const steps = plan(
      input({
        desired: desiredState([m1]),
        models: { faces: view({ pointers: { current: ref(m2), securityVersion: 2 } }) },
      }),
    );
    expect(steps.map((s) => [s.kind, 'code' in s ? s.code : undefined])).toEqual([
      ['reject', 'E_UPDATE_SECURITY_VERSION'],
    ]);
  });

  it('waits for a failure to be retried, and forever on a permanent one', () => {
    const key = failureKey('faces', m2.sha256);
    expect(
      modelKinds(input({ failures: { [key]: { code: 'E_DOWNLOAD_HTTP', message: '', retryAt: 2000 } } })),
    ).toEqual([]);
    expect(
      kinds(
        input({ now: 2000, failures: { [key]: { code: 'E_DOWNLOAD_HTTP', message: '', retryAt: 2000 } } }),
      ),
    ).toEqual(['download']);
    expect(
      modelKinds(
        input({ now: 1e12, failures: { [key]: { code: 'E_UPDATE_PROBATION_FAILED', message: '' } } }),
      ),
    ).toEqual([]);
  });

  it('applies pipelines once models settle, and only when something changed', () => {
    const models = {
      faces: view({ versions: [m2.sha256], pointers: { current: ref(m2), securityVersion: 2 } }),
    };
    const first = plan(input({ models }));
    expect(first.map((s) => s.kind)).toEqual(['apply-pipelines']);
    const step = first[0];
    if (step?.kind !== 'apply-pipelines') throw new Error('expected apply-pipelines');
    expect(step.models.faces?.sha256).toBe(m2.sha256);
    expect(plan(input({ models, appliedPipelinesKey: step.key }))).toEqual([]);
  });

  it('collects old versions and leftovers once the desired model is current', () => {
    const models = {
      faces: view({
        versions: [m1.sha256, m2.sha256, 'f'.repeat(64)],
        pointers: { current: ref(m2), previous: ref(m1), securityVersion: 2 },
      }),
    };
    expect(kinds(input({ models, appliedPipelinesKey: 'x' }))).toEqual(['collect', 'apply-pipelines']);
  });

  it('reverts a model whose installed bytes failed the re-check', () => {
    const models = {
      faces: view({
        versions: [m2.sha256],
        pointers: { current: ref(m2), previous: ref(m1), securityVersion: 2 },
      }),
    };
    expect(plan(input({ models, broken: new Set(['faces']) }))).toEqual([
      { kind: 'revert', name: 'faces', code: 'E_UPDATE_MODEL_TAMPERED' },
    ]);
  });

  it('holds pipelines back while a model is still moving', () => {
    const other = desiredModel('plates', '1.0.0');
    const models = {
      faces: view({ versions: [m2.sha256], pointers: { current: ref(m2), securityVersion: 2 } }),
    };
    expect(kinds(input({ desired: desiredState([m2, other]), models }))).toEqual(['download']);
  });
});
