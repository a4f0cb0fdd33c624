/**
 * A `HealthStore` and `PeerEpochStore` in memory: for tests, and for embedding the health
 * monitor without a database. Same contract as `src/store/health-repository.ts`.
 */
import type { PeerRecord } from '../store/types.js';
import {
  EPOCH_HISTORY_KINDS,
  type HealthRecord,
  type HealthStore,
  KEPT_HISTORY_KINDS,
  type NewHealthRecord,
  type PeerEpochStore,
} from './ports.js';

/** An in-memory health store; `records` is exposed for assertions. */
export interface MemoryHealthStore extends HealthStore, PeerEpochStore {
  readonly records: readonly HealthRecord[];
}

export function createMemoryHealthStore(): MemoryHealthStore {
  const records: HealthRecord[] = [];
  const peers = new Map<string, PeerRecord>();
  let lastId = 0;
  return {
    records,
    async append(batch: readonly NewHealthRecord[]) {
      for (const r of batch) records.push({ ...r, id: ++lastId, detail: { ...r.detail } });
    },
    async history(query = {}) {
      const limit = query.limit ?? 100;
      return records
        .filter(
          (r) =>
            (query.peer === undefined || r.peer === query.peer) &&
            (query.kinds === undefined || query.kinds.includes(r.kind)) &&
            (query.beforeId === undefined || r.id < query.beforeId),
        )
        .reverse()
        .slice(0, limit);
    },
    async epochs(peer: string) {
      const epochs: string[] = [];
      for (const r of records) {
        const epoch = r.detail['epoch'];
        if (r.peer !== peer || !EPOCH_HISTORY_KINDS.includes(r.kind)) continue;
        if (typeof epoch === 'string' && epochs.at(-1) !== epoch) epochs.push(epoch);
      }
      return epochs;
    },
    async prune(beforeMs: number) {
      const kept = records.filter((r) => r.atMs >= beforeMs || KEPT_HISTORY_KINDS.includes(r.kind));
      const deleted = records.length - kept.length;
      records.splice(0, records.length, ...kept);
      return deleted;
    },
    async trim(peer: string, kind: string, keep: number) {
      const ofKind = records.filter((r) => r.peer === peer && r.kind === kind);
      const drop = new Set(ofKind.slice(0, Math.max(0, ofKind.length - keep)));
      const kept = records.filter((r) => !drop.has(r));
      records.splice(0, records.length, ...kept);
      return drop.size;
    },
    async getPeer(address: string) {
      return peers.get(address);
    },
    async setPeerEpoch(address: string, epoch: string) {
      const peer = peers.get(address) ?? { address, publicKeyHex: '', epoch: null, updatedAtMs: 0 };
      peers.set(address, { ...peer, epoch });
    },
  };
}
