import type { PaymentObject } from '../protocol/index.js';
import type { ParleyStore } from '../store/types.js';
import { observed } from '../util/background.js';

/** One version of a shared object as the channel sees it. */
export interface VersionState {
  readonly version: string;
  readonly previous: string | null;
  readonly payment: PaymentObject;
  /** A successful command has read this version: it can never be read again. */
  consumed: boolean;
}

/** All versions of one object on a channel, with its head. */
export interface ObjectState {
  readonly referenceId: string;
  readonly versions: Map<string, VersionState>;
  head: string | null;
  /** Decided changes not yet durable; such an object is never evicted. */
  inflight: number;
}

export interface ObjectCacheOptions {
  /**
   * How many objects to keep in memory. Objects are reloaded from the store on demand, so the
   * limit bounds memory, not correctness.
   * @default 20000
   */
  maxObjects?: number;
}

/**
 * The channel's working set of objects, loaded lazily from the store. The channel mutates
 * entries when it decides a command (before the commit is durable); if a commit fails the
 * whole cache is dropped and reloaded from the store.
 */
export interface ObjectCache {
  get(referenceId: string): Promise<ObjectState>;
  clear(): void;
  readonly size: number;
}

export function createObjectCache(
  peer: string,
  store: ParleyStore,
  decodePayment: (json: string) => PaymentObject,
  options: ObjectCacheOptions = {},
): ObjectCache {
  const maxObjects = options.maxObjects ?? 20_000;
  // Map iteration order is insertion order: re-inserting on access gives an LRU.
  const objects = new Map<string, ObjectState>();
  const loading = new Map<string, Promise<ObjectState>>();

  async function load(referenceId: string): Promise<ObjectState> {
    const stored = await store.versions(peer, referenceId);
    const state: ObjectState = { referenceId, versions: new Map(), head: null, inflight: 0 };
    const readBy = new Set<string>();
    for (const v of stored) {
      if (v.previousVersion !== null) readBy.add(v.previousVersion);
    }
    for (const v of stored) {
      state.versions.set(v.version, {
        version: v.version,
        previous: v.previousVersion,
        payment: decodePayment(v.payment),
        consumed: readBy.has(v.version),
      });
      if (!readBy.has(v.version)) state.head = v.version;
    }
    return state;
  }

  /**
   * Drops the least recently used objects (never one with changes in flight, nor `keep`) down to
   * nine tenths of the limit. In batches: a Map iterated from its start walks over the entries
   * deleted since its last rehash, and an LRU deletes at every hit, so evicting one object per
   * insert cost a walk over thousands of them each time.
   */
  function evict(keep: string): void {
    const target = Math.floor(maxObjects * 0.9);
    for (const [key, candidate] of objects) {
      if (objects.size <= target) break;
      if (candidate.inflight === 0 && key !== keep) objects.delete(key);
    }
  }

  /** Counts `clear()` calls: a load that straddles one may have read what is now stale. */
  let clears = 0;

  return {
    async get(referenceId) {
      for (;;) {
        const hit = objects.get(referenceId);
        if (hit) {
          objects.delete(referenceId);
          objects.set(referenceId, hit);
          return hit;
        }
        const startedIn = clears;
        let pending = loading.get(referenceId);
        if (!pending) {
          const load$ = load(referenceId);
          pending = load$;
          loading.set(referenceId, load$);
          // Its failure reaches the callers through `pending`.
          observed(
            load$.finally(() => {
              if (loading.get(referenceId) === load$) loading.delete(referenceId);
            }),
          );
        }
        const state = await pending;
        // Cleared while loading (a failed commit, a resync that rewrote history): read again.
        if (clears !== startedIn) continue;
        const raced = objects.get(referenceId);
        if (raced) return raced;
        objects.set(referenceId, state);
        if (objects.size > maxObjects) evict(referenceId);
        return state;
      }
    },
    clear() {
      clears++;
      objects.clear();
      loading.clear();
    },
    get size() {
      return objects.size;
    },
  };
}
