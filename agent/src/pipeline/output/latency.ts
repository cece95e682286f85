import type { LatencySummary } from '../types';

/** A sliding window of the last `size` samples with nearest-rank percentiles. */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(size = 1024) {
    this.values = new Float64Array(size);
  }

  add(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % this.values.length;
    if (this.filled < this.values.length) this.filled++;
  }

  summary(): LatencySummary {
    if (this.filled === 0) return { p50: 0, p95: 0, p99: 0, count: 0 };
    const sorted = Array.from(this.values.subarray(0, this.filled)).sort((a, b) => a - b);
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
    const round = (v: number) => Math.round(v * 100) / 100;
    return { p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), count: this.filled };
  }
}

/** Items per second over the last `windowMs`. */
export class RateMeter {
  private readonly stamps: number[] = [];

  constructor(private readonly windowMs = 10_000) {}

  mark(now: number): void {
    this.stamps.push(now);
    this.trim(now);
  }

  rate(now: number): number {
    this.trim(now);
    if (this.stamps.length < 2) return 0;
    const first = this.stamps[0] as number;
    const span = Math.max(now - first, 1);
    return Math.round(((this.stamps.length - 1) / span) * 1000 * 100) / 100;
  }

  private trim(now: number): void {
    while (this.stamps.length > 0 && (this.stamps[0] as number) < now - this.windowMs) this.stamps.shift();
  }
}
