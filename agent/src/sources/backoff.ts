/**
 * Exponential backoff with jitter for restarting a failed process or poll. Pure: the random source is
 * passed in so tests can pin it.
 */
export interface BackoffOptions {
  /** First delay, ms. */
  readonly initialMs: number;
  /** Upper bound of any delay, ms. */
  readonly maxMs: number;
  /** Growth per consecutive failure. */
  readonly factor: number;
  /** Fraction of the delay that is randomised: 0 = none, 1 = anywhere in [0, delay]. */
  readonly jitter: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };

/**
 * The delay before attempt number `attempt` (0 = first retry). With jitter j the delay is drawn from
 * [d * (1 - j), d], which spreads a fleet that lost the same camera server while never waiting longer
 * than the capped exponential.
 */
export function backoffDelay(
  opts: BackoffOptions,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exp = opts.initialMs * Math.pow(opts.factor, Math.max(0, attempt));
  const capped = Math.min(opts.maxMs, exp);
  const j = Math.min(1, Math.max(0, opts.jitter));
  return Math.round(capped * (1 - j * random()));
}
