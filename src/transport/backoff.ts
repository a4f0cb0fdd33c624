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

/** Knobs of {@link createRedialPolicy}, in milliseconds. */
export interface RedialPolicyOptions extends BackoffOptions {
  /** Shortest redial delay after the peer closed with 1001 (going away: it restarts). */
  restartMinDelayMs: number;
  /** Longest such delay (exclusive). */
  restartMaxDelayMs: number;
  /** For this long after such a close, every redial waits a restart delay, not the backoff. */
  restartWindowMs: number;
}

/** One redial delay and why it is that long. */
export interface RedialDelay {
  /** The backoff attempt the delay belongs to (0 in the restart window). */
  attempt: number;
  delayMs: number;
  /** `restart`: a short delay after the peer said it is going away; `backoff` otherwise. */
  kind: 'backoff' | 'restart';
}

/** When a dialer redials: capped exponential backoff, reset by a link proven healthy, short after a restart. */
export interface RedialPolicy {
  /** The delay before the next dial (after a failed dial or a disconnect); counts the attempt. */
  next(nowMs: number): RedialDelay;
  /** The link carried heartbeats both ways: the next delay is the first backoff delay again (and a restart window ends). */
  reset(): void;
  /** The peer closed with 1001 at `nowMs`: redial soon, and keep redialing soon for a while. */
  peerGoingAway(nowMs: number): void;
}

/**
 * A peer that closes with 1001 is stopping (a restart, a deploy) and usually listens again within
 * seconds. Within `restartWindowMs` of that close every redial waits a delay uniform in
 * `[restartMinDelayMs, restartMaxDelayMs)`, so the channel is back a fraction of a second after
 * the peer listens; the jitter spreads the redials of many nodes. After the window (the peer
 * stays away) the exponential backoff takes over from its first delay.
 *
 * @param random - uniform in `[0, 1)` (injected in tests).
 */
export function createRedialPolicy(options: RedialPolicyOptions, random: () => number): RedialPolicy {
  let attempt = 0;
  let restartUntilMs = Number.NEGATIVE_INFINITY;
  return {
    next(nowMs) {
      if (nowMs < restartUntilMs) {
        const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
        const span = Math.max(0, options.restartMaxDelayMs - options.restartMinDelayMs);
        return { attempt: 0, delayMs: options.restartMinDelayMs + Math.floor(r * span), kind: 'restart' };
      }
      const delay: RedialDelay = {
        attempt,
        delayMs: backoffDelayMs(attempt, options, random),
        kind: 'backoff',
      };
      attempt++;
      return delay;
    },
    reset() {
      attempt = 0;
      restartUntilMs = Number.NEGATIVE_INFINITY;
    },
    peerGoingAway(nowMs) {
      attempt = 0;
      restartUntilMs = nowMs + options.restartWindowMs;
    },
  };
}
