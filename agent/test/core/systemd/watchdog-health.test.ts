import { ManualClock } from '@perch/shared';
import { Counters } from '../../../src/core/counters';
import type { Notifier } from '../../../src/core/systemd/sd-notify';
import { Watchdog } from '../../../src/core/systemd/watchdog';
import {
  pipelineHealth,
  pipelinesHealthCheck,
  type PipelineMark,
} from '../../../src/core/systemd/watchdog-health';
import type { PipelineState, PipelineStats } from '../../../src/pipeline/types';
import { silentLogger } from '../helpers';

const EMPTY = { p50: 0, p95: 0, p99: 0, count: 0 };

function stats(id: string, state: PipelineState, received = 0, processed = 0): PipelineStats {
  return {
    id,
    state,
    received,
    processed,
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
    errors: {},
  };
}

const STALL = 300_000;

/** Runs `pipelineHealth` over a sequence of (time, stats) ticks and returns the reasons. */
function run(ticks: Array<[number, PipelineStats[]]>): Array<string | undefined> {
  let marks: ReadonlyMap<string, PipelineMark> = new Map();
  return ticks.map(([now, s]) => {
    const health = pipelineHealth(s, marks, now, STALL);
    marks = health.marks;
    return health.reason;
  });
}

describe('pipelineHealth', () => {
  it('gives no reason to restart for a pipeline that failed permanently', () => {
    const failed = [stats('door', 'failed')];
    expect(run([0, STALL, 10 * STALL].map((t) => [t, failed]))).toEqual([undefined, undefined, undefined]);
  });

  it('reports a running pipeline that takes items in but finishes none for the stall time', () => {
    expect(
      run([
        [0, [stats('door', 'running', 10, 10)]],
        [STALL / 2, [stats('door', 'running', 20, 10)]],
        [STALL - 1, [stats('door', 'running', 30, 10)]],
        [STALL, [stats('door', 'running', 40, 10)]],
      ]),
    ).toEqual([undefined, undefined, undefined, expect.stringContaining('door')]);
  });

  it('does not count a quiet source as a stall', () => {
    const quiet = [stats('door', 'running', 10, 10)];
    expect(run([0, STALL, 2 * STALL, 3 * STALL].map((t) => [t, quiet]))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('starts the stall time again once an item is processed', () => {
    expect(
      run([
        [0, [stats('door', 'running', 10, 10)]],
        [STALL / 2, [stats('door', 'running', 20, 10)]],
        [STALL, [stats('door', 'running', 30, 11)]],
        [STALL + STALL / 2, [stats('door', 'running', 40, 11)]],
        [2 * STALL, [stats('door', 'running', 50, 11)]],
      ]),
    ).toEqual([undefined, undefined, undefined, undefined, expect.stringContaining('door')]);
  });

  it('names only the stuck pipeline next to a failed and a healthy one', () => {
    const at = (stuckIn: number, okOut: number) => [
      stats('door', 'failed'),
      stats('yard', 'running', stuckIn, 5),
      stats('gate', 'running', okOut, okOut),
    ];
    const reasons = run([
      [0, at(5, 1)],
      [STALL / 2, at(50, 50)],
      [STALL, at(100, 100)],
    ]);
    expect(reasons[2]).toMatch(/yard$/);
  });
});

describe('watchdog with the pipelines check', () => {
  it('keeps pinging systemd while a pipeline stays failed, and stops while one is stuck', async () => {
    const clock = new ManualClock();
    const sent: string[] = [];
    const notifier: Notifier = { enabled: true, notify: (s) => sent.push(s), close: () => undefined };
    let current = [stats('door', 'failed'), stats('yard', 'running', 0, 0)];
    const dog = new Watchdog(
      notifier,
      60_000,
      [pipelinesHealthCheck(() => current, clock, 90_000)],
      clock,
      silentLogger(),
      new Counters(),
    );
    dog.start();
    for (let i = 0; i < 10; i++) await clock.advance(30_000);
    expect(dog.pingCount()).toBe(10);
    // Items keep arriving at yard, none is processed: after 90 s the pings stop.
    for (let i = 1; i <= 5; i++) {
      current = [stats('door', 'failed'), stats('yard', 'running', i, 0)];
      await clock.advance(30_000);
    }
    // Pings at 30 s and 60 s into the stall, none from 90 s on.
    expect(dog.pingCount()).toBe(12);
    // One item processed: pinging again.
    current = [stats('door', 'failed'), stats('yard', 'running', 6, 1)];
    await clock.advance(30_000);
    expect(dog.pingCount()).toBe(13);
    dog.stop();
  });
});
