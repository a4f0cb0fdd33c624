/**
 * The restored node's view of its peer's restore (`restore-tracker.ts`): a run that ended
 * unfinished with no run after it for `FOLLOWER_GAP_MS` (its leader stopped, telling nobody)
 * shows `waiting` with `SYNC_RESTORE_STALLED`, never `running` for ever; the same restore going
 * on keeps its counts; a new run in time, or the sync's close, leaves nothing scheduled.
 * Virtual time.
 */
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createRestoreTracker, FOLLOWER_GAP_MS } from '../../src/sync/restore-tracker.js';
import type { RestoreEvent } from '../../src/sync/types.js';

function tracking() {
  const scheduler = new VirtualTimeScheduler();
  const events = new Subject<RestoreEvent>();
  const seen: RestoreEvent[] = [];
  events.subscribe((e) => seen.push(e));
  return { scheduler, seen, tracker: createRestoreTracker('peer', events, scheduler) };
}

describe("the restored node's view of its peer's restore", () => {
  it('shows a restore whose leader went quiet after an unfinished run as waiting, stalled', () => {
    const { scheduler, seen, tracker } = tracking();
    tracker.followerBegan('peer_state_lost');
    tracker.followerStored(20);
    tracker.followerEnded(false, false);
    expect(tracker.status()).toMatchObject({ state: 'running', moved: 20 });
    scheduler.flush();
    expect(scheduler.now()).toBe(FOLLOWER_GAP_MS);
    expect(tracker.status()).toMatchObject({ state: 'waiting', moved: 20, error: 'SYNC_RESTORE_STALLED' });
    expect(seen.at(-1)).toMatchObject({ type: 'restore_progress', state: 'waiting' });

    // The leader goes on (a new connection): the same restore, its counts kept.
    tracker.followerBegan('peer_state_lost');
    expect(tracker.status()).toMatchObject({ state: 'running', moved: 20 });
    expect(tracker.status()).not.toHaveProperty('error');
    tracker.followerStored(5);
    tracker.followerEnded(true, false);
    expect(tracker.status()).toMatchObject({ state: 'finished', moved: 25 });
    scheduler.flush();
    expect(tracker.status()?.state).toBe('finished');
  });

  it('stays running when the next run begins in time, and a new restore starts its counts afresh', () => {
    const { scheduler, tracker } = tracking();
    tracker.followerBegan('peer_state_lost');
    tracker.followerStored(7);
    tracker.followerEnded(false, false);
    tracker.followerBegan('peer_state_lost');
    scheduler.flush();
    expect(tracker.status()).toMatchObject({ state: 'running', moved: 7 });

    tracker.followerEnded(false, true);
    expect(tracker.status()?.state).toBe('waiting');
    tracker.followerBegan('operator');
    expect(tracker.status()).toMatchObject({ state: 'running', reason: 'operator', moved: 0 });
  });

  it('counts a store that lands after its run ended, leaving the state and the timer as they were', () => {
    const { scheduler, tracker } = tracking();
    tracker.followerBegan('peer_state_lost');
    tracker.followerEnded(false, false);
    tracker.followerStored(3);
    expect(tracker.status()).toMatchObject({ state: 'running', moved: 3 });
    scheduler.flush();
    expect(tracker.status()).toMatchObject({ state: 'waiting', moved: 3, error: 'SYNC_RESTORE_STALLED' });

    tracker.followerBegan('peer_state_lost');
    tracker.followerEnded(false, true);
    tracker.followerStored(2);
    expect(tracker.status()).toMatchObject({ state: 'waiting', moved: 5 });
  });

  it('reports nothing once the sync closed', () => {
    const { scheduler, seen, tracker } = tracking();
    tracker.followerBegan('peer_state_lost');
    tracker.followerEnded(false, false);
    const before = seen.length;
    tracker.close();
    scheduler.flush();
    expect(seen).toHaveLength(before);
    expect(tracker.status()?.state).toBe('running');
  });
});
