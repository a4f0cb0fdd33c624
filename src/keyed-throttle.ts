/**
 * At most one pass per key and interval, over a bounded set of keys: for reports and repairs
 * that a busy peer, or anyone able to open a socket, could otherwise trigger without bound.
 */
export interface KeyedThrottle {
  /**
   * Whether `key` passes now: how many times it was held back since its last pass, or undefined
   * when it is held back (its last pass is within the interval, or `maxKeys` other keys are).
   */
  pass(key: string): number | undefined;
}

export interface KeyedThrottleOptions {
  intervalMs: number;
  /** Most keys remembered at once; past it, new keys are held back until older ones expire. */
  maxKeys: number;
  /** A monotonic clock, ms. @default performance.now */
  now?: () => number;
}

export function createKeyedThrottle(options: KeyedThrottleOptions): KeyedThrottle {
  const { intervalMs, maxKeys } = options;
  const now = options.now ?? (() => performance.now());
  const keys = new Map<string, { atMs: number; held: number }>();
  return {
    pass(key) {
      const t = now();
      const last = keys.get(key);
      if (last && t - last.atMs < intervalMs) {
        last.held++;
        return undefined;
      }
      if (!last && keys.size >= maxKeys) {
        for (const [k, v] of keys) if (t - v.atMs >= intervalMs) keys.delete(k);
        if (keys.size >= maxKeys) return undefined;
      }
      keys.set(key, { atMs: t, held: 0 });
      return last?.held ?? 0;
    },
  };
}
