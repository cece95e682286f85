/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * delay = random(0, min(cap, base * 2^attempt)). Full jitter spreads a fleet that lost its broker at
 * the same moment, so a restarted broker is not hit by every device at once.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  /** Lower bound after jitter, so a reconnect never spins (default 0). */
  minMs?: number;
  /** Source of randomness in [0, 1); tests pass a fixed sequence. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.baseMs > 0) || !(options.capMs >= options.baseMs)) {
      throw new RangeError('backoff needs baseMs > 0 and capMs >= baseMs');
    }
    this.random = options.random ?? Math.random;
  }

  /** The ceiling for the current attempt, before jitter. */
  ceiling(): number {
    // 2^attempt overflows to Infinity for large attempts; min() keeps it at the cap.
    return Math.min(this.options.capMs, this.options.baseMs * 2 ** Math.min(this.attempt, 60));
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const ceiling = this.ceiling();
    this.attempt++;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.max(this.options.minMs ?? 0, Math.floor(r * ceiling));
  }

  /** Call after a success. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
