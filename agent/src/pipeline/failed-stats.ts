import type { PerchError } from '@perch/shared';
import type { PipelineStats } from './types';

const EMPTY = { p50: 0, p95: 0, p99: 0, count: 0 };

/** The stats of a pipeline that is not running: state failed, zero counts, `failure` as its last error. */
export function failedStats(id: string, failure: PerchError | undefined, now: number): PipelineStats {
  const last = failure ? { code: failure.code, message: failure.message, at: now } : undefined;
  return {
    id,
    state: 'failed',
    received: 0,
    processed: 0,
    dropped: 0,
    fps: 0,
    latency: {
      queue: EMPTY,
      preprocess: EMPTY,
      infer: EMPTY,
      postprocess: EMPTY,
      rules: EMPTY,
      total: EMPTY,
    },
    detections: 0,
    events: 0,
    snapshots: 0,
    errors: last ? { [last.code]: { count: 1, last } } : {},
    ...(last ? { lastError: last } : {}),
  };
}
