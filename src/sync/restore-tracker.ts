/**
 * Where the closed-object restore of one channel is, as this process sees it (PROTOCOL.md §7.6):
 * the leader's cursor and counts, or what the peer's restore stored here, reported as
 * `restore_progress` / `restore_finished` events. Restored objects are counted here, never
 * reported as new payments.
 */
import type { SchedulerLike, Subject } from 'rxjs';
import type { RestoreCursor } from './ports.js';
import type { RestoreEvent, RestoreStatus } from './types.js';

export interface RestoreTracker {
  status(): RestoreStatus | undefined;
  /** The leader's cursor moved (or its state changed); `movedNow` objects moved since the last report. */
  leader(cursor: RestoreCursor, state: RestoreStatus['state'], movedNow: number, error?: string): void;
  /** A run of the peer's restore began here. */
  followerBegan(reason: string): void;
  /** The peer's restore stored `count` objects here. */
  followerStored(count: number): void;
  /**
   * A run of the peer's restore ended: `done`, the whole restore is over; `stopped`, the run
   * failed or was aborted (the peer resumes it later). Otherwise more runs follow.
   */
  followerEnded(done: boolean, stopped: boolean): void;
}

export function createRestoreTracker(
  peer: string,
  events: Subject<RestoreEvent>,
  scheduler: SchedulerLike,
): RestoreTracker {
  let current: RestoreStatus | undefined;
  const emit = (status: RestoreStatus, movedNow: number): void => {
    current = status;
    events.next({
      type: status.state === 'finished' ? 'restore_finished' : 'restore_progress',
      peer,
      ...status,
      movedNow,
    });
  };
  return {
    status: () => current,
    leader(cursor, state, movedNow, error) {
      emit(
        {
          role: 'leader',
          reason: cursor.reason,
          state,
          compared: cursor.compared,
          moved: cursor.moved,
          after: cursor.after,
          startedAtMs: cursor.startedAtMs,
          atMs: scheduler.now(),
          ...(error !== undefined ? { error } : {}),
        },
        movedNow,
      );
    },
    followerBegan(reason) {
      if (current?.role === 'follower' && current.state === 'running') return;
      const now = scheduler.now();
      emit(
        {
          role: 'follower',
          reason,
          state: 'running',
          compared: 0,
          moved: 0,
          after: null,
          startedAtMs: now,
          atMs: now,
        },
        0,
      );
    },
    followerStored(count) {
      if (current?.role !== 'follower' || count === 0) return;
      emit({ ...current, state: 'running', moved: current.moved + count, atMs: scheduler.now() }, count);
    },
    followerEnded(done, stopped) {
      if (current?.role !== 'follower' || (!done && !stopped)) return;
      emit({ ...current, state: done ? 'finished' : 'waiting', atMs: scheduler.now() }, 0);
    },
  };
}
