/**
 * Pieces for running two channel syncs back to back without sockets: the commit items of a
 * signed history as one side logs them, the sync's `exclusive`, and an in-memory ordered link.
 */
import { createSerialQueue } from '../../src/channel/serial-queue.js';
import { isOpen } from '../../src/objects/index.js';
import type { CommitItem } from '../../src/store/types.js';
import type { SyncLink } from '../../src/sync/resync.js';
import type { BuiltStep, Party } from './signed-histories.js';

/** Commit items of `steps` as `me` logs them on its channel with `peer`. */
export function commitItemsFor(steps: BuiltStep[], me: Party, peer: Party): CommitItem[] {
  return steps.map((s) => ({
    command: {
      peer: peer.address,
      cid: s.cid,
      direction: s.proposer.address === me.address ? 'outbound' : 'inbound',
      referenceId: s.payment.reference_id,
      readVersion: s.read,
      writeVersion: s.cid,
      requestJws: s.signed.request,
      responseJws: s.signed.response,
      status: 'success',
      errorCode: null,
    },
    version: {
      peer: peer.address,
      referenceId: s.payment.reference_id,
      version: s.cid,
      previousVersion: s.read,
      payment: JSON.stringify(s.payment),
      open: isOpen(s.payment),
    },
  }));
}

/** A sync's `exclusive` (the channel's receiving order) for a sync with no channel: one at a time. */
export function serialExclusive(): <T>(fn: () => Promise<T>) => Promise<T> {
  const queue = createSerialQueue();
  return (fn) => queue.run(fn);
}

/**
 * An open link that hands every frame to `deliver`, in order, one `schedule` later (a
 * microtask by default; `setImmediate` lets I/O in between).
 */
export function memoryLink(
  deliver: (frame: string) => void,
  schedule: (fn: () => void) => void = queueMicrotask,
): SyncLink {
  return {
    state: 'open',
    closed: new Promise<never>(() => undefined),
    send(frame) {
      schedule(() => deliver(frame));
      return true;
    },
    writable: async () => undefined,
    close() {},
  };
}
