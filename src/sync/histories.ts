/**
 * Histories out (PROTOCOL.md §7.4, §7.5): what this node sends of an object's signed log to a
 * peer that holds a given head, and how histories are cut into frames. Pure, but for
 * `readHistory`, which reads the signed log first.
 */
import type { ObjectHistory, SignedCommand } from '../protocol/sync-frames.js';
import type { CommandRecord } from '../store/types.js';
import type { SyncStore } from './ports.js';

/** The two parties of a channel, and whether this node is its protocol server (forks). */
export interface HistorySides {
  me: string;
  peer: string;
  isServer: boolean;
}

/** Rough JSON size of a signed command in a frame. */
export const commandBytes = (c: SignedCommand): number =>
  c.request.length + c.response.length + c.proposer.length + 64;

/** Rough JSON size of an object's history in a frame. */
export const historyBytes = (h: ObjectHistory): number =>
  h.commands.reduce((n, c) => n + commandBytes(c), 256);

/** A signed-log entry as the wire carries it. */
export function signedOf(record: CommandRecord, sides: HistorySides): SignedCommand {
  return {
    proposer: record.direction === 'outbound' ? sides.me : sides.peer,
    request: record.requestJws,
    response: record.responseJws,
  };
}

/**
 * This node's history of an object (its signed log `log`) for a peer that holds `after` (null:
 * all of it). A fork (`after` unknown here) is answered per the role rule: the server sends its
 * whole branch as `replace`, the client answers `yield`.
 */
export function historyFrom(
  referenceId: string,
  log: readonly CommandRecord[],
  after: string | null,
  sides: HistorySides,
): ObjectHistory {
  const signed = (r: CommandRecord): SignedCommand => signedOf(r, sides);
  const successes = log.filter((r) => r.status === 'success');
  if (successes.length === 0) return { reference_id: referenceId, kind: 'missing', base: null, commands: [] };
  const failures = log.filter((r) => r.status === 'failure');
  if (after === null) {
    return { reference_id: referenceId, kind: 'history', base: null, commands: log.map(signed) };
  }
  const at = successes.findIndex((r) => r.writeVersion === after);
  if (at >= 0) {
    return {
      reference_id: referenceId,
      kind: 'history',
      base: after,
      commands: [...successes.slice(at + 1), ...failures].map(signed),
    };
  }
  if (sides.isServer) {
    return { reference_id: referenceId, kind: 'replace', base: null, commands: log.map(signed) };
  }
  return { reference_id: referenceId, kind: 'yield', base: null, commands: [] };
}

/**
 * The history itself, or a `too_large` entry in its place when it cannot fit in one frame
 * (PROTOCOL.md §7.5): the receiver stores nothing of it and reports `SYNC_HISTORY_TOO_LARGE`.
 */
export function sendable(history: ObjectHistory, maxObjectBytes: number): ObjectHistory {
  if (history.commands.length === 0 || historyBytes(history) <= maxObjectBytes) return history;
  return { reference_id: history.reference_id, kind: 'too_large', base: null, commands: [] };
}

/** Splits histories into frames of at most `maxBatchBytes` (a larger history in a frame of its own). */
export function pack(histories: readonly ObjectHistory[], maxBatchBytes: number): ObjectHistory[][] {
  const frames: ObjectHistory[][] = [];
  let current: ObjectHistory[] = [];
  let bytes = 0;
  for (const h of histories) {
    const size = historyBytes(h);
    if (current.length > 0 && bytes + size > maxBatchBytes) {
      frames.push(current);
      current = [];
      bytes = 0;
    }
    current.push(h);
    bytes += size;
  }
  if (current.length > 0) frames.push(current);
  return frames;
}

/** This node's history of an object for a peer that holds `after`, read from the store unless `prefetched`. */
export async function readHistory(
  store: Pick<SyncStore, 'history'>,
  sides: HistorySides,
  referenceId: string,
  after: string | null,
  prefetched?: readonly CommandRecord[],
): Promise<ObjectHistory> {
  const log = prefetched ?? (await store.history(sides.peer, referenceId));
  return historyFrom(referenceId, log, after, sides);
}
