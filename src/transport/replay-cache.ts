/**
 * The acceptor's memory of hello nonces (PROTOCOL.md §5.2, rule "replayed hello").
 *
 * A hello is accepted only while its timestamp is within the skew window of the acceptor's
 * clock, so a nonce needs remembering only until `timestamp_ms + window`: after that the hello
 * would be refused as stale anyway. Only hellos whose signature verified are remembered, so the
 * cache grows with real peers' dial rate, never with an attacker's garbage; `maxEntries` bounds
 * it regardless (the three-way handshake keeps a replay from completing even if a nonce was
 * evicted early).
 */

/** Options of {@link createNonceCache}. */
export interface NonceCacheOptions {
  /** How far a hello timestamp may be from the acceptor's clock, either way. */
  windowMs: number;
  /** Most nonces remembered; the oldest are forgotten first. @default 100000 */
  maxEntries?: number;
}

/** Remembered hello nonces. */
export interface NonceCache {
  /**
   * Remembers `nonce` (from a hello stamped `timestampMs`) and returns true, or returns false
   * when it is already remembered: a replay.
   */
  remember(nonce: string, timestampMs: number, nowMs: number): boolean;
  /** Nonces currently remembered. */
  readonly size: number;
}

/** Creates an empty nonce cache. */
export function createNonceCache(options: NonceCacheOptions): NonceCache {
  const maxEntries = options.maxEntries ?? 100_000;
  /** nonce → forget after (ms). Insertion order is roughly expiry order: prune from the front. */
  const expiries = new Map<string, number>();

  function prune(nowMs: number): void {
    for (const [nonce, expiresAt] of expiries) {
      if (expiresAt > nowMs && expiries.size <= maxEntries) return;
      expiries.delete(nonce);
    }
  }

  return {
    remember(nonce, timestampMs, nowMs) {
      prune(nowMs);
      const expiresAt = expiries.get(nonce);
      if (expiresAt !== undefined && expiresAt > nowMs) return false;
      expiries.delete(nonce);
      expiries.set(nonce, Math.max(timestampMs, nowMs) + options.windowMs);
      if (expiries.size > maxEntries) prune(nowMs);
      return true;
    },
    get size() {
      return expiries.size;
    },
  };
}
