import { InferenceSession, Tensor } from 'onnxruntime-node';
import { PerchError } from '@perch/shared';
import type { TensorData } from '../preprocess/tensor';
import type { InferenceOptions } from '../types';
import type { Outputs } from '../postprocess/types';

export interface ProviderFallback {
  readonly provider: string;
  readonly reason: string;
}

export interface OpenedSession {
  readonly session: InferenceSession;
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
 * One onnxruntime session, trying each execution provider in turn (with CPU behind it for the operators it
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
    ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
    ...(opts.interOpThreads ? { interOpNumThreads: opts.interOpThreads } : {}),
  };
  let lastError: unknown;
  for (const provider of order) {
    const eps = provider === 'cpu' ? ['cpu'] : [provider, 'cpu'];
    try {
      const session =
        typeof model === 'string'
          ? await InferenceSession.create(model, { ...base, executionProviders: eps })
          : await InferenceSession.create(model, { ...base, executionProviders: eps });
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
  session: InferenceSession,
  feeds: Record<string, TensorData>,
  outputNames?: readonly string[],
): Promise<Outputs> {
  const ortFeeds: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrtTensor(t);
  try {
    return outputNames ? await session.run(ortFeeds, [...outputNames]) : await session.run(ortFeeds);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PerchError('E_PIPELINE_INFERENCE', `inference failed: ${reason}`, undefined, { cause: err });
  }
}
