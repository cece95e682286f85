import type { Logger, PipelineConfig } from '@perch/shared';
import type { EventSink, ModelBundle, PipelineStats } from '../pipeline/types';

/** A verified model ready for a pipeline: its bytes were re-hashed against the signed sha256 just now. */
export interface ActiveModel {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly bundle: ModelBundle;
}

/** What the agent core gives the pipeline host when it builds it. */
export interface PipelineHostDeps {
  /** The outbox: events go out through it. */
  readonly events: EventSink;
  readonly snapshotsDir: string;
  /** The agent's logger: the host logs under `<its namespace>:pipelines` and follows its level. */
  readonly logger?: Logger;
}

/**
 * The seam between the agent core (reconciler) and the pipeline code (agent/src/pipeline, sources).
 * The reconciler calls `apply` with the whole desired pipeline set whenever it or the active models
 * change; the host starts, stops, restarts or swaps models so that what runs matches the call.
 */
export interface PipelineHost {
  /**
   * Makes the running pipelines match `pipelines`. A pipeline whose model is missing from `models` is
   * not started (its state is reported as failed). Should not reject for one bad pipeline: report it in
   * `stats()` instead. A rejection is logged and counted by the reconciler, which retries later.
   */
  apply(pipelines: readonly PipelineConfig[], models: ReadonlyMap<string, ActiveModel>): Promise<void>;
  /** Restarts one pipeline (command `restart-pipeline`); false when no such pipeline runs. */
  restart(id: string): Promise<boolean>;
  /** Takes a snapshot of a camera pipeline (command `snapshot`); resolves with its ref. */
  snapshot?(id: string): Promise<string | undefined>;
  /** Stops every pipeline; idempotent. */
  stop(): Promise<void>;
  /** Current statistics, one entry per pipeline, for telemetry, reports and the watchdog. */
  stats(): readonly PipelineStats[];
}

/** Runs nothing. Used until the pipeline host from issue 5 is wired in, and by tests of the core. */
export class NoopPipelineHost implements PipelineHost {
  private applied: readonly PipelineConfig[] = [];
  private models: ReadonlyMap<string, ActiveModel> = new Map();

  apply(pipelines: readonly PipelineConfig[], models: ReadonlyMap<string, ActiveModel>): Promise<void> {
    this.applied = pipelines;
    this.models = models;
    return Promise.resolve();
  }

  restart(id: string): Promise<boolean> {
    return Promise.resolve(this.applied.some((p) => p.id === id));
  }

  stop(): Promise<void> {
    this.applied = [];
    return Promise.resolve();
  }

  stats(): readonly PipelineStats[] {
    return [];
  }

  /** What the last `apply` asked for (tests). */
  lastApplied(): { pipelines: readonly PipelineConfig[]; models: ReadonlyMap<string, ActiveModel> } {
    return { pipelines: this.applied, models: this.models };
  }
}

/** Builds the host; the composition root passes the real factory once the pipeline code exports one. */
export type PipelineHostFactory = (deps: PipelineHostDeps) => PipelineHost;
