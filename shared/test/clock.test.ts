import { ManualClock, systemClock } from '@perch/shared';

describe('ManualClock', () => {
  it('fires timers in time order only when advanced', async () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@300'), 300);
    clock.setTimeout(() => fired.push('a@100'), 100);
    const cancelled = clock.setTimeout(() => fired.push('never'), 200);
    clock.clearTimeout(cancelled);
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual(['a@100']);
    expect(clock.now()).toBe(1100);
    await clock.advance(1000);
    expect(fired).toEqual(['a@100', 'b@300']);
    expect(clock.pending()).toBe(0);
  });

  it('repeats intervals until cleared', async () => {
    const clock = new ManualClock(0);
    let n = 0;
    const h = clock.setInterval(() => n++, 10);
    await clock.advance(35);
    expect(n).toBe(3);
    clock.clearInterval(h);
    await clock.advance(100);
    expect(n).toBe(3);
  });

  it('lets a promise chain started by one timer schedule the next within one advance', async () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    const loop = async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(100);
        seen.push(clock.now());
      }
    };
    const done = loop();
    await clock.advance(300);
    await done;
    expect(seen).toEqual([100, 200, 300]);
  });

  it('rejects a sleep when its signal aborts', async () => {
    const clock = new ManualClock(0);
    const ac = new AbortController();
    const p = clock.sleep(1000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(clock.pending()).toBe(0);
  });
});

describe('systemClock', () => {
  it('tells the wall-clock time', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
  });

  it('sleeps and can be aborted', async () => {
    await systemClock.sleep(1);
    const ac = new AbortController();
    ac.abort();
    await expect(systemClock.sleep(10_000, ac.signal)).rejects.toBeDefined();
  });
});
