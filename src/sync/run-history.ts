/**
 * Retention of the resync-run history (`resync_run`): with a retention set, the runs that
 * finished longer ago than it are deleted when the node starts and every hour after. Runs still
 * going are never deleted. Time comes from the injected scheduler only.
 */
import {
  asyncScheduler,
  catchError,
  EMPTY,
  exhaustMap,
  from,
  type SchedulerLike,
  Subscription,
  timer,
} from 'rxjs';
import type { SyncStore } from './ports.js';

/** How often old runs are pruned. */
export const PRUNE_RUNS_EVERY_MS = 60 * 60 * 1000;

/**
 * Prunes `store`'s runs older than `retentionMs` now and every {@link PRUNE_RUNS_EVERY_MS}
 * until unsubscribed; `retentionMs` 0 keeps every run (nothing is scheduled). A failed prune
 * is reported to `onError` and tried again at the next tick; a prune still running when the
 * next tick comes makes that tick a no-op.
 */
export function pruneRunHistory(
  store: Pick<SyncStore, 'pruneRuns'>,
  retentionMs: number,
  options: { scheduler?: SchedulerLike; onError?: (err: unknown) => void } = {},
): Subscription {
  if (retentionMs <= 0) return Subscription.EMPTY;
  const scheduler = options.scheduler ?? asyncScheduler;
  return timer(0, PRUNE_RUNS_EVERY_MS, scheduler)
    .pipe(
      exhaustMap(() =>
        from(store.pruneRuns(scheduler.now() - retentionMs)).pipe(
          catchError((err: unknown) => {
            options.onError?.(err);
            return EMPTY;
          }),
        ),
      ),
    )
    .subscribe();
}
