/**
 * Retry delays: exponential with "equal jitter" (half fixed, half random), capped. The fixed half
 * keeps every retry later than the one before it in expectation; the random half spreads a burst
 * of failures so a receiver coming back is not hit by all of them at once.
 */
export interface BackoffOptions {
  /** Delay after the first failure (default 10 s). */
  baseMs?: number;
  /** Upper bound (default 1 h). */
  maxMs?: number;
  factor?: number;
}

export function retryDelay(
  failures: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const base = options.baseMs ?? 10_000;
  const max = options.maxMs ?? 3_600_000;
  const factor = options.factor ?? 2;
  const ceiling = Math.min(max, base * factor ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
