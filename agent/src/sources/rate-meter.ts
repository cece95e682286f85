import type { Clock } from '@perch/shared';

/**
 * Events per second over a sliding window, read from the injected clock. Keeps one timestamp per event in
 * the window, bounded by `maxSamples` so a burst cannot grow it.
 */
export class RateMeter {
  private stamps: number[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly windowMs = 5_000,
    private readonly maxSamples = 1_000,
  ) {}

  mark(): void {
    this.stamps.push(this.clock.now());
    if (this.stamps.length > this.maxSamples) this.stamps.shift();
  }

  /** Rate in events per second; 0 with fewer than two events in the window. */
  rate(): number {
    const now = this.clock.now();
    const cutoff = now - this.windowMs;
    let first = 0;
    while (first < this.stamps.length && this.stamps[first]! < cutoff) first += 1;
    if (first > 0) this.stamps.splice(0, first);
    const n = this.stamps.length;
    if (n < 2) return 0;
    const span = Math.max(now - this.stamps[0]!, 1);
    return Math.round(((n - 1) * 1000 * 100) / span) / 100;
  }
}
