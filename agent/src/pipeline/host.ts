import {
  childLogger,
  createLogger,
  isPerchError,
  PerchError,
  systemClock,
  type Clock,
  type Logger,
  type PipelineConfig,
} from '@perch/shared';
import type { ActiveModel, PipelineHost, PipelineHostDeps } from '../core/pipelines-port';
import { createSource, type SourceDeps } from '../sources';
import { failedStats } from './failed-stats';
import { SnapshotStore } from './output/snapshots';
import { createPipeline } from './runner';
import type { InferenceOptions, PipelineHandle, PipelineOptions, PipelineStats, Source } from './types';

export interface PipelineHostOptions extends PipelineHostDeps {
  readonly clock?: Clock;
  /** Passed to every source (spawn, ffmpeg path, MQTT client for sensor-mqtt ...). */
  readonly sourceDeps?: SourceDeps;
  /** Defaults under each pipeline's `options`. */
  readonly inference?: InferenceOptions;
  /** Byte budget of the shared snapshot folder. Default 200 MB. */
  readonly snapshotBudgetBytes?: number;
  /** Builds the source of a config; tests replace it. Default: agent/src/sources `createSource`. */
  readonly makeSource?: (config: PipelineConfig, deps: SourceDeps) => Source;
}

interface Entry {
  config: PipelineConfig;
  /** sha256 of the model it runs (or tried to). */
  modelSha?: string;
  handle?: PipelineHandle;
  /** Why it is not running, when it is not. */
  failure?: PerchError;
}

/**
 * Inference options from the desired state's free-form `options` map. Keys understood by the host:
 * threads (or intraOpThreads), interOpThreads, executionProviders ("tensorrt,cuda"), warmupRuns,
 * queueSize (1..2), decodeLanes (1..4), updateIntervalMs.
 */
export function inferenceFrom(
  options: PipelineConfig['options'],
  defaults: InferenceOptions = {},
): InferenceOptions {
  const num = (k: string) => (typeof options?.[k] === 'number' ? (options[k] as number) : undefined);
  const eps = options?.executionProviders;
  const intra = num('threads') ?? num('intraOpThreads') ?? defaults.intraOpThreads;
  const inter = num('interOpThreads') ?? defaults.interOpThreads;
  const warm = num('warmupRuns') ?? defaults.warmupRuns;
  const providers =
    typeof eps === 'string'
      ? eps
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : defaults.executionProviders;
  return {
    ...(intra !== undefined ? { intraOpThreads: intra } : {}),
    ...(inter !== undefined ? { interOpThreads: inter } : {}),
    ...(warm !== undefined ? { warmupRuns: warm } : {}),
    ...(providers ? { executionProviders: providers } : {}),
  };
}

const sameRun = (a: PipelineConfig, b: PipelineConfig) =>
  JSON.stringify({ ...a, model: '' }) === JSON.stringify({ ...b, model: '' });

/**
 * The agent core's PipelineHost: makes the running pipelines match the desired set. A new model for an
 * unchanged pipeline is a hot swap (no frame dropped; the old model stays if the new one fails); any other
 * change restarts that pipeline. One `apply` at a time; a failure of one pipeline is in its stats and never
 * rejects `apply`.
 */
export class DefaultPipelineHost implements PipelineHost {
  private readonly entries = new Map<string, Entry>();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly snapshots: SnapshotStore;
  private flight: Promise<void> = Promise.resolve();

  constructor(private readonly opts: PipelineHostOptions) {
    this.log = childLogger(opts.logger ?? createLogger({ namespace: 'agent' }), 'pipelines');
    this.clock = opts.clock ?? systemClock;
    this.snapshots = new SnapshotStore({
      dir: opts.snapshotsDir,
      maxBytes: opts.snapshotBudgetBytes ?? 200 * 1024 * 1024,
    });
  }

  apply(pipelines: readonly PipelineConfig[], models: ReadonlyMap<string, ActiveModel>): Promise<void> {
    const run = this.flight.then(() => this.applyNow(pipelines, models));
    this.flight = run.catch(() => undefined);
    return run;
  }

  private async applyNow(
    pipelines: readonly PipelineConfig[],
    models: ReadonlyMap<string, ActiveModel>,
  ): Promise<void> {
    const wanted = new Set(pipelines.map((p) => p.id));
    for (const [id, entry] of this.entries) {
      if (!wanted.has(id)) {
        await this.stopEntry(entry);
        this.entries.delete(id);
      }
    }
    for (const config of pipelines) {
      const model = models.get(config.model);
      const entry = this.entries.get(config.id);
      if (!model) {
        if (entry) await this.stopEntry(entry);
        this.entries.set(config.id, {
          config,
          failure: new PerchError('E_PIPELINE_MODEL_MISSING', `model ${config.model} is not installed`),
        });
        continue;
      }
      if (entry?.handle && !entry.failure && sameRun(entry.config, config)) {
        if (entry.modelSha === model.sha256) continue;
        try {
          await entry.handle.swapModel(model.bundle);
          entry.modelSha = model.sha256;
          entry.config = config;
        } catch (err) {
          this.log.warn('model swap failed; the previous model keeps running', {
            pipeline: config.id,
            err: String(err),
          });
        }
        continue;
      }
      if (entry) await this.stopEntry(entry);
      await this.startEntry(config, model);
    }
  }

  private async startEntry(config: PipelineConfig, model: ActiveModel): Promise<void> {
    const entry: Entry = { config, modelSha: model.sha256 };
    this.entries.set(config.id, entry);
    let source: Source;
    try {
      const sourceDeps: SourceDeps = {
        logger: childLogger(this.log, 'source', { pipeline: config.id }),
        ...this.opts.sourceDeps,
        id: config.id,
        clock: this.clock,
      };
      source = this.opts.makeSource
        ? this.opts.makeSource(config, sourceDeps)
        : createSource(withPipelineRate(config), sourceDeps);
    } catch (err) {
      entry.failure = isPerchError(err) ? err : new PerchError('E_PIPELINE_SOURCE', String(err));
      this.log.warn('pipeline source not created', {
        pipeline: config.id,
        code: entry.failure.code,
        err: entry.failure.message,
      });
      return;
    }
    const options: PipelineOptions = {
      id: config.id,
      source,
      bundle: model.bundle,
      ...(config.rules ? { rules: { ...config.rules, ...updateInterval(config.options) } } : {}),
      sinks: config.outputs?.events === false ? [] : [this.opts.events],
      ...(config.outputs?.snapshots === false ? {} : { snapshotWriter: this.snapshots }),
      inference: inferenceFrom(config.options, this.opts.inference),
      ...(typeof config.options?.queueSize === 'number' ? { queueSize: config.options.queueSize } : {}),
      ...(typeof config.options?.decodeLanes === 'number'
        ? { prepareConcurrency: config.options.decodeLanes }
        : {}),
      clock: this.clock,
    };
    const handle = createPipeline(options, { logger: this.log });
    entry.handle = handle;
    try {
      await handle.start();
    } catch (err) {
      entry.failure = isPerchError(err) ? err : new PerchError('E_INTERNAL', String(err));
    }
  }

  private async stopEntry(entry: Entry): Promise<void> {
    const h = entry.handle;
    entry.handle = undefined;
    if (h)
      await h.stop().catch((err: unknown) => this.log.warn('pipeline stop failed', { err: String(err) }));
  }

  async restart(id: string): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return false;
    await this.flight;
    const h = entry.handle;
    if (!h) return false;
    await h.stop();
    entry.failure = undefined;
    try {
      await h.start();
    } catch (err) {
      entry.failure = isPerchError(err) ? err : new PerchError('E_INTERNAL', String(err));
    }
    return true;
  }

  async snapshot(id: string): Promise<string | undefined> {
    const ref = await this.entries.get(id)?.handle?.snapshot();
    return ref?.ref;
  }

  async stop(): Promise<void> {
    await this.flight;
    await Promise.all([...this.entries.values()].map((e) => this.stopEntry(e)));
    this.entries.clear();
  }

  stats(): readonly PipelineStats[] {
    return [...this.entries.values()].map((e) => {
      if (e.handle) return e.handle.stats();
      return failedStats(e.config.id, e.failure, this.clock.now());
    });
  }
}

function updateInterval(options: PipelineConfig['options']): { updateIntervalMs?: number } {
  const v = options?.updateIntervalMs;
  return typeof v === 'number' ? { updateIntervalMs: v } : {};
}

/** The factory the agent's composition root takes (`AgentOverrides.pipelineHost`). */
export function createPipelineHost(deps: PipelineHostOptions): PipelineHost {
  return new DefaultPipelineHost(deps);
}

/** Source kinds that decode a video stream and take a frame rate (the ffmpeg camera sources). */
const RATE_SOURCE_KINDS = new Set(['lavfi', 'file', 'rtsp', 'v4l2', 'mjpeg']);

/**
 * The pipeline's `fps` becomes the source's rate where the source has one; still-image, audio and
 * sensor sources have no rate and refuse unknown keys, so they get their config unchanged.
 */
export function withPipelineRate(config: PipelineConfig): PipelineConfig['source'] {
  if (config.fps === undefined || !RATE_SOURCE_KINDS.has(config.source.kind)) return config.source;
  return { fps: config.fps, ...config.source };
}
