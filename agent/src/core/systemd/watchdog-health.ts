import type { Clock } from '@perch/shared';
import type { PipelineStats } from '../../pipeline/types';
import type { HealthCheck } from './watchdog';

/** How long a running pipeline may take items in without finishing any before the ping is withheld. */
export const PIPELINE_STALL_MS = 300_000;

/** What the check remembers of one pipeline between two ticks. */
export interface PipelineMark {
  received: number;
  processed: number;
  /** Since when items have been arriving while none was processed. */
  since: number;
}

export interface PipelineHealth {
  /** undefined = no reason to withhold the ping. */
  reason: string | undefined;
  /** Marks to pass to the next call. */
  marks: ReadonlyMap<string, PipelineMark>;
}

/**
 * Whether the pipelines give systemd a reason to restart the agent. A restart cures a stuck process,
 * not a bad configuration: a pipeline in state `failed` (a model that does not match its spec, a source
 * that refuses to start) fails again after every restart, and is reported as failed in the reported
 * state and telemetry, so it is no reason here. A `running` pipeline is stuck when items keep arriving
 * (`received` grows) while none is finished (`processed` stands still) for `stallMs`; a quiet source
 * is not a stall. Pure: the marks of the previous call come in, the new ones go out.
 */
export function pipelineHealth(
  stats: readonly PipelineStats[],
  previous: ReadonlyMap<string, PipelineMark>,
  now: number,
  stallMs: number = PIPELINE_STALL_MS,
): PipelineHealth {
  const marks = new Map<string, PipelineMark>();
  const stalled: string[] = [];
  for (const s of stats) {
    if (s.state !== 'running') continue;
    const prev = previous.get(s.id);
    const idleOrMoving = !prev || s.processed !== prev.processed || s.received <= prev.received;
    const mark = { received: s.received, processed: s.processed, since: idleOrMoving ? now : prev.since };
    marks.set(s.id, mark);
    if (now - mark.since >= stallMs) stalled.push(s.id);
  }
  return {
    reason: stalled.length
      ? `no item processed for ${Math.round(stallMs / 1000)} s: ${stalled.join(',')}`
      : undefined,
    marks,
  };
}

/** The watchdog's `pipelines` health check over `pipelineHealth`, keeping the marks between ticks. */
export function pipelinesHealthCheck(
  stats: () => readonly PipelineStats[],
  clock: Pick<Clock, 'now'>,
  stallMs: number = PIPELINE_STALL_MS,
): HealthCheck {
  let marks: ReadonlyMap<string, PipelineMark> = new Map();
  return {
    name: 'pipelines',
    check: () => {
      const health = pipelineHealth(stats(), marks, clock.now(), stallMs);
      marks = health.marks;
      return health.reason;
    },
  };
}
