import type { DesiredModel, PipelineConfig } from '@perch/shared';
import type { ModelRef } from '../model-store';

/**
 * The update steps, one discriminated union. The planner returns them, the executors (a mapped type
 * over `kind`, so a missing handler does not compile) run them.
 */
export type Step =
  | { kind: 'download'; model: DesiredModel }
  | { kind: 'verify'; model: DesiredModel }
  | { kind: 'stage'; model: DesiredModel }
  | { kind: 'probation'; model: DesiredModel }
  | { kind: 'activate'; model: DesiredModel }
  | { kind: 'reject'; model: DesiredModel; code: 'E_UPDATE_SECURITY_VERSION'; message: string }
  | { kind: 'revert'; name: string; code: RevertCode; sha256?: string }
  | { kind: 'collect'; name: string }
  | { kind: 'apply-pipelines'; pipelines: PipelineConfig[]; models: Record<string, ModelRef>; key: string };

export type RevertCode = 'E_UPDATE_PROBATION_CRASHED' | 'E_UPDATE_MODEL_TAMPERED';

export type StepKind = Step['kind'];
export type StepOf<K extends StepKind> = Extract<Step, { kind: K }>;
export type Executors = { [K in StepKind]: (step: StepOf<K>) => Promise<void> };

/** Runs a step with the executor for its kind. */
export function runStep(executors: Executors, step: Step): Promise<void> {
  const run = executors[step.kind] as (s: Step) => Promise<void>;
  return run(step);
}

/** A short name for logs and reports. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'revert':
    case 'collect':
      return `${step.kind} ${step.name}`;
    case 'apply-pipelines':
      return `apply-pipelines (${step.pipelines.length})`;
    default:
      return `${step.kind} ${step.model.name}@${step.model.version}`;
  }
}
