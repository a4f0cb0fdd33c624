/**
 * Capped exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015): the n-th delay (0-based) is uniform in `[0, min(max, initial·2ⁿ))`.
 * Full jitter spreads the redials of many nodes that lost a peer at the same moment.
 */

/** Backoff parameters, in milliseconds. */
export interface BackoffOptions {
  /** Ceiling of the first delay. */
  initialDelayMs: number;
  /** No delay is longer than this. */
  maxDelayMs: number;
}

/** The ceiling of the `attempt`-th delay (0-based): `min(maxDelayMs, initialDelayMs · 2^attempt)`. */
export function backoffCeilingMs(attempt: number, options: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.trunc(attempt)), 62);
  return Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
}

/**
 * The `attempt`-th delay: `floor(random() · ceiling)`, so `0 ≤ delay < ceiling`.
 *
 * @param random - uniform in `[0, 1)` (injected in tests).
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  return Math.floor(r * backoffCeilingMs(attempt, options));
}
