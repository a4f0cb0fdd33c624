import type { CommandRequestObject } from '../protocol/index.js';
import { decodeRequest } from '../protocol/index.js';
import type { OutboxRecord } from '../store/types.js';
import { payloadOf } from './command-parts.js';

/** A command of this node without a final response, and the version it holds. */
export interface Pending {
  request: CommandRequestObject;
  /** Empty until the command is durable in the outbox. */
  requestJws: string;
  referenceId: string;
  readVersion: string | null;
  writeVersion: string;
}

/**
 * This node's pending commands and what they hold: the version each reads (locked: no other
 * decision may take it), the objects being created, the versions they will write.
 */
export interface PendingCommands {
  get(cid: string): Pending | undefined;
  has(cid: string): boolean;
  /** Whether a pending command of mine reads this version. */
  isLocked(readVersion: string): boolean;
  /** Whether a pending command of mine creates this object. */
  isCreating(referenceId: string): boolean;
  /** Whether a pending command of mine writes this version. */
  writes(writeVersion: string): boolean;
  /** Tracks a command and locks what it reads. */
  add(cid: string, pending: Pending): void;
  /** Tracks a command read back from the outbox. */
  addStored(row: OutboxRecord): void;
  /** Forgets a command and releases its lock; returns it if it was pending. */
  release(cid: string): Pending | undefined;
  clear(): void;
  /** Pending commands, oldest first. */
  entries(): IterableIterator<[string, Pending]>;
}

export function createPendingCommands(): PendingCommands {
  /** read version → cid of my pending command that reads it */
  const locks = new Map<string, string>();
  /** referenceIds I am creating (pending create commands) */
  const pendingCreates = new Set<string>();
  const pendingByCid = new Map<string, Pending>();
  /** write version → cid of my pending command that writes it */
  const pendingByWrite = new Map<string, string>();

  function add(cid: string, pending: Pending): void {
    if (pending.readVersion === null) pendingCreates.add(pending.referenceId);
    else locks.set(pending.readVersion, cid);
    pendingByCid.set(cid, pending);
    pendingByWrite.set(pending.writeVersion, cid);
  }

  return {
    get: (cid) => pendingByCid.get(cid),
    has: (cid) => pendingByCid.has(cid),
    isLocked: (readVersion) => locks.has(readVersion),
    isCreating: (referenceId) => pendingCreates.has(referenceId),
    writes: (writeVersion) => pendingByWrite.has(writeVersion),
    add,
    addStored(row) {
      add(row.cid, {
        request: decodeRequest(payloadOf(row.requestJws)),
        requestJws: row.requestJws,
        referenceId: row.referenceId,
        readVersion: row.readVersion,
        writeVersion: row.writeVersion,
      });
    },
    release(cid) {
      const pending = pendingByCid.get(cid);
      if (!pending) return undefined;
      pendingByCid.delete(cid);
      if (pendingByWrite.get(pending.writeVersion) === cid) pendingByWrite.delete(pending.writeVersion);
      if (pending.readVersion === null) pendingCreates.delete(pending.referenceId);
      else if (locks.get(pending.readVersion) === cid) locks.delete(pending.readVersion);
      return pending;
    },
    clear() {
      locks.clear();
      pendingCreates.clear();
      pendingByCid.clear();
      pendingByWrite.clear();
    },
    entries: () => pendingByCid.entries(),
  };
}
