import { createSlicer } from '../event-loop.js';
import { isFinal } from '../objects/index.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { createOpenObjectsDigest } from '../protocol/heartbeat-frames.js';
import type { PaymentObject } from '../protocol/index.js';
import type { ParleyStore } from '../store/types.js';

/**
 * The objects open on one channel, as the count and order-independent digest over
 * `(reference_id, head version)` that hellos and heartbeats announce (PROTOCOL.md §8.2). It
 * follows durable commits only.
 */
export interface OpenObjectTracker {
  /** Reads every open object's head from the store, in pages, and starts over from them. */
  load(): Promise<void>;
  /** A commit made `write` the head of `referenceId` (it read `read`, null for a create); now durable. */
  headMoved(
    referenceId: string,
    read: string | null,
    previous: { payment: PaymentObject } | undefined,
    write: { version: string; payment: PaymentObject },
  ): void;
  summary(): OpenObjectsSummary;
}

export function createOpenObjectTracker(store: ParleyStore, peer: string): OpenObjectTracker {
  const openObjects = createOpenObjectsDigest();
  return {
    async load() {
      const heads: Array<[string, string]> = [];
      let after: string | null = null;
      // Heartbeats and frames run between slices (`event-loop.ts`).
      const pause = createSlicer();
      for (;;) {
        await pause();
        const page = await store.openObjects(peer, after, 1000);
        for (const head of page) heads.push([head.referenceId, head.headVersion]);
        if (page.length < 1000) break;
        after = page[page.length - 1]!.referenceId;
      }
      openObjects.clear();
      for (const [referenceId, version] of heads) openObjects.add(referenceId, version);
    },
    headMoved(referenceId, read, previous, write) {
      if (read !== null && previous && !isFinal(previous.payment)) openObjects.remove(referenceId, read);
      if (!isFinal(write.payment)) openObjects.add(referenceId, write.version);
    },
    summary: () => openObjects.summary(),
  };
}
