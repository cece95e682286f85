import { isPerchError, PerchError, type ModelSpec } from '@perch/shared';
import { createPostprocessor, type Postprocessor } from '../postprocess';
import type { Outputs } from '../postprocess/types';
import { resolveShape } from '../preprocess/sensor';
import type { TensorData } from '../preprocess/tensor';
import { checkSpecAgainstModel, parseSpec } from '../spec';
import type { InferenceOptions, ModelBundle } from '../types';
import { openSession, runSession, type ProviderFallback, type SessionLike } from './session';

/**
 * A model ready to serve: session, validated spec, labels and its postprocessor. Created only through
 * `load`, which fails with a coded error (spec invalid, load, mismatch, warm-up inference) and leaves nothing
 * open behind it.
 */
export class LoadedModel {
  readonly loadedAt = Date.now();
  private released = false;
  private inflight = 0;
  private releaseWhenIdle = false;

  private constructor(
    readonly bundle: ModelBundle,
    readonly spec: ModelSpec,
    readonly labels: readonly string[],
    readonly provider: string,
    readonly fallbacks: readonly ProviderFallback[],
    readonly postprocessor: Postprocessor,
    private readonly session: SessionLike,
  ) {}

  static async load(bundle: ModelBundle, opts: InferenceOptions = {}): Promise<LoadedModel> {
    const { spec, labels } = parseSpec(bundle.spec, bundle.labels);
    const opened = await openSession(bundle.model, opts);
    const { session } = opened;
    try {
      checkSpecAgainstModel(spec, session.inputMetadata, session.outputMetadata);
      const model = new LoadedModel(
        bundle,
        spec,
        labels,
        opened.provider,
        opened.fallbacks,
        createPostprocessor(spec),
        session,
      );
      await model.warmup(opts.warmupRuns ?? 1);
      return model;
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
  }

  /** False when the session's worker died; the runner then reloads the bundle. */
  get alive(): boolean {
    return !this.released && this.session.alive !== false;
  }

  get name(): string {
    return this.bundle.name;
  }

  get version(): string {
    return this.bundle.version;
  }

  /** A zero input of the spec's shape. */
  zeroInput(): TensorData {
    const input = this.spec.input;
    if (input.kind === 'image') {
      const dims =
        input.layout === 'NHWC' ? [1, input.height, input.width, 3] : [1, 3, input.height, input.width];
      const n = input.width * input.height * 3;
      return input.dtype === 'uint8'
        ? { type: 'uint8', data: new Uint8Array(n), dims }
        : { type: 'float32', data: new Float32Array(n), dims };
    }
    if (input.kind === 'audio') {
      return { type: 'float32', data: new Float32Array(input.windowSamples), dims: [1, input.windowSamples] };
    }
    const fixed = input.shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
    const dims = resolveShape(input.shape, fixed);
    return input.dtype === 'uint8'
      ? { type: 'uint8', data: new Uint8Array(fixed), dims }
      : { type: 'float32', data: new Float32Array(fixed), dims };
  }

  private async warmup(runs: number): Promise<void> {
    for (let i = 0; i < runs; i++) {
      try {
        await this.infer(this.zeroInput());
      } catch (err) {
        if (isPerchError(err) && err.code === 'E_PIPELINE_INFERENCE') {
          throw new PerchError(
            'E_PIPELINE_SPEC_MISMATCH',
            `the model fails on an input shaped by the spec: ${err.message}`,
            undefined,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
    }
    this.postprocessor.reset?.();
  }

  /** Run the model on one prepared input (plus the postprocessor's recurrent feeds). */
  async infer(input: TensorData): Promise<Outputs> {
    if (this.released)
      throw new PerchError('E_PIPELINE_NOT_RUNNING', `model ${this.name}@${this.version} was released`);
    this.inflight++;
    try {
      const feeds = { ...(this.postprocessor.feeds?.() ?? {}), [this.spec.input.name]: input };
      return await runSession(this.session, feeds, this.postprocessor.outputNames);
    } finally {
      this.inflight--;
      if (this.releaseWhenIdle && this.inflight === 0) void this.release();
    }
  }

  /** Release the session now, or as soon as the run in flight finishes. */
  async release(): Promise<void> {
    if (this.inflight > 0) {
      this.releaseWhenIdle = true;
      return;
    }
    if (this.released) return;
    this.released = true;
    await this.session.release().catch(() => undefined);
  }
}
