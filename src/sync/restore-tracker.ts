/**
 * Where the closed-object restore of one channel is, as this process sees it (PROTOCOL.md §7.6):
 * the leader's cursor and counts, or what the peer's restore stored here, reported as
 * `restore_progress` / `restore_finished` events. Restored objects are counted here, never
 * reported as new payments.
 */
import type { SchedulerLike, Subject, Subscription } from 'rxjs';
import type { RestoreCursor } from './ports.js';
import type { RestoreEvent, RestoreStatus } from './types.js';

/**
 * How long the peer's restore may go without a run here after one ended unfinished before it
 * shows `waiting` (`SYNC_RESTORE_STALLED`): its leader stopped it (no progress, a failure on its
 * side) and says so to nobody until the next connection. Its next run shows it `running` again.
 */
export const FOLLOWER_GAP_MS = 120_000;

export interface RestoreTracker {
  status(): RestoreStatus | undefined;
  /** The leader's cursor moved (or its state changed); `movedNow` objects moved since the last report. */
  leader(cursor: RestoreCursor, state: RestoreStatus['state'], movedNow: number, error?: string): void;
  /**
   * The restore this node leads could not be read (its store failed with `error`): it shows
   * `waiting` (reason `unknown` when this process never knew it) until the next connection.
   */
  leaderUnread(error: string): void;
  /**
   * A read found nothing left to restore (`cursor`: a finished restore, or none): a restore shown
   * `waiting` since a failed read is `finished`.
   */
  leaderNothingLeft(cursor: RestoreCursor | undefined): void;
  /** A run of the peer's restore began here. */
  followerBegan(reason: string): void;
  /** The peer's restore stored `count` objects here. */
  followerStored(count: number): void;
  /**
   * A run of the peer's restore ended: `done`, the whole restore is over; `stopped`, the run
   * failed or was aborted (the peer resumes it later). Otherwise more runs follow, and without
   * one for {@link FOLLOWER_GAP_MS} the restore shows `waiting`.
   */
  followerEnded(done: boolean, stopped: boolean): void;
  /** The channel's sync closed: nothing is reported after this. */
  close(): void;
}

export function createRestoreTracker(
  peer: string,
  events: Subject<RestoreEvent>,
  scheduler: SchedulerLike,
): RestoreTracker {
  let current: RestoreStatus | undefined;
  /** `current` is the `waiting` of a cursor read that failed. */
  let unread = false;
  let closed = false;
  /** Shows the peer's restore `waiting` when no run follows an unfinished one in time. */
  let gap: Subscription | undefined;
  const stopGap = (): void => {
    gap?.unsubscribe();
    gap = undefined;
  };
  const emit = (status: RestoreStatus, movedNow: number): void => {
    if (closed) return;
    current = status;
    unread = false;
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
    leaderUnread(error) {
      const now = scheduler.now();
      const known: RestoreStatus =
        current?.role === 'leader'
          ? current
          : {
              role: 'leader',
              reason: 'unknown',
              state: 'waiting',
              compared: 0,
              moved: 0,
              after: null,
              startedAtMs: now,
              atMs: now,
            };
      emit({ ...known, state: 'waiting', atMs: now, error }, 0);
      unread = true;
    },
    leaderNothingLeft(cursor) {
      if (!unread || current === undefined) return;
      if (cursor) this.leader(cursor, 'finished', 0);
      else {
        const { error: _, ...rest } = current;
        emit({ ...rest, state: 'finished', atMs: scheduler.now() }, 0);
      }
    },
    followerBegan(reason) {
      stopGap();
      if (current?.role === 'follower' && current.state === 'running') return;
      const now = scheduler.now();
      // The same restore going on after a pause (a new connection, a stall) keeps its counts.
      if (current?.role === 'follower' && current.state === 'waiting' && current.reason === reason) {
        const { error: _, ...kept } = current;
        emit({ ...kept, state: 'running', atMs: now }, 0);
        return;
      }
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
      // A store that lands after its run ended leaves the state (and the gap's timer) as it is.
      emit({ ...current, moved: current.moved + count, atMs: scheduler.now() }, count);
    },
    followerEnded(done, stopped) {
      if (current?.role !== 'follower') return;
      if (done || stopped) {
        stopGap();
        emit({ ...current, state: done ? 'finished' : 'waiting', atMs: scheduler.now() }, 0);
        return;
      }
      if (current.state !== 'running') return;
      stopGap();
      gap = scheduler.schedule(() => {
        gap = undefined;
        if (current?.role !== 'follower' || current.state !== 'running') return;
        emit({ ...current, state: 'waiting', atMs: scheduler.now(), error: 'SYNC_RESTORE_STALLED' }, 0);
      }, FOLLOWER_GAP_MS);
    },
    close() {
      closed = true;
      stopGap();
    },
  };
}
