import { availableParallelism } from 'node:os';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { PerchError } from '@perch/shared';
import type { TensorData } from '../preprocess/tensor';
import type { InferenceOptions } from '../types';
import type { Outputs } from '../postprocess/types';
import type { TensorMeta } from '../spec';
import { WorkerSession } from './worker-session';

/** What the pipeline needs of a session, in a worker thread (the default) or on the main thread. */
export interface SessionLike {
  readonly inputMetadata: readonly TensorMeta[];
  readonly outputMetadata: readonly TensorMeta[];
  /** False when the session can no longer run (its worker died). Absent = always alive. */
  readonly alive?: boolean;
  run(feeds: Record<string, TensorData>, outputNames?: readonly string[]): Promise<Outputs>;
  release(): Promise<void>;
}

/** onnxruntime on the calling thread: blocks the event loop for each run (tests and comparisons only). */
class InProcessSession implements SessionLike {
  constructor(private readonly session: InferenceSession) {}

  get inputMetadata(): readonly TensorMeta[] {
    return this.session.inputMetadata;
  }

  get outputMetadata(): readonly TensorMeta[] {
    return this.session.outputMetadata;
  }

  async run(feeds: Record<string, TensorData>, outputNames?: readonly string[]): Promise<Outputs> {
    const ortFeeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(t);
    return outputNames
      ? await this.session.run(ortFeeds, [...outputNames])
      : await this.session.run(ortFeeds);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export interface ProviderFallback {
  readonly provider: string;
  readonly reason: string;
}

export interface OpenedSession {
  readonly session: SessionLike;
  /** The execution provider the session was created with (the first of the list that loaded). */
  readonly provider: string;
  readonly fallbacks: readonly ProviderFallback[];
}

/** The provider list to try: requested ones in order, then CPU, without duplicates. */
export function providerOrder(requested: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const p of [...(requested ?? []), 'cpu']) {
    const name = p.toLowerCase();
    if (!out.includes(name)) out.push(name);
  }
  return out;
}

/**
 * One onnxruntime session (in a worker thread unless `inProcess`), trying each execution provider in turn (with CPU behind it for the operators it
 * lacks). onnxruntime-node throws at creation when a provider's library is missing, so the first one that
 * creates is the one that runs the graph.
 */
export async function openSession(
  model: string | Uint8Array,
  opts: InferenceOptions = {},
): Promise<OpenedSession> {
  const fallbacks: ProviderFallback[] = [];
  const order = providerOrder(opts.executionProviders);
  const base: InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    // Failures reach us as exceptions and become coded errors; onnxruntime's own log would repeat each one.
    logSeverityLevel: 4,
    // One core is left for decoding (sharp) and the event loop unless the pipeline says otherwise.
    intraOpNumThreads: opts.intraOpThreads ?? Math.max(1, availableParallelism() - 1),
    ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
  };
  let lastError: unknown;
  for (const provider of order) {
    const eps = provider === 'cpu' ? ['cpu'] : [provider, 'cpu'];
    try {
      const options = { ...base, executionProviders: eps };
      let session: SessionLike;
      if (opts.inProcess) {
        session = new InProcessSession(
          typeof model === 'string'
            ? await InferenceSession.create(model, options)
            : await InferenceSession.create(model, options),
        );
      } else {
        session = await WorkerSession.create(model, options);
      }
      return { session, provider, fallbacks };
    } catch (err) {
      lastError = err;
      if (provider === 'cpu') break;
      fallbacks.push({
        provider,
        reason: err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err),
      });
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new PerchError(
    'E_PIPELINE_MODEL_LOAD',
    `onnxruntime could not load the model: ${reason}`,
    { fallbacks },
    { cause: lastError },
  );
}

export function toOrtTensor(t: TensorData): Tensor {
  return new Tensor(t.type, t.data, [...t.dims]);
}

/** Run with coded errors: a failure inside the model is E_PIPELINE_INFERENCE. */
export async function runSession(
  session: SessionLike,
  feeds: Record<string, TensorData>,
  outputNames?: readonly string[],
): Promise<Outputs> {
  try {
    return await session.run(feeds, outputNames);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PerchError('E_PIPELINE_INFERENCE', `inference failed: ${reason}`, undefined, { cause: err });
  }
}
