/**
 * Backoff of the resync runs I lead against a peer whose store cannot answer them.
 *
 * A peer whose disk is full answers every run's `SyncBegin` with `SyncError STORE_UNAVAILABLE`
 * at once, and every command with `wait`; the `wait`s trigger runs (`command_waiting`), each run
 * fails in milliseconds, and the next starts right away: a storm of runs that cannot progress
 * (and, at the peer, of failed writes of their records). So after a run the peer failed on its
 * store, the next run waits: `firstMs`, then twice as long after each such run in a row, up to
 * `maxMs`. Requests made meanwhile merge into that one run (`resync.ts`). A run the peer answers
 * resets it.
 */
import { asyncScheduler, type SchedulerLike, timer } from 'rxjs';

/** Knobs of {@link createRunBackoff}. */
export interface RunBackoffOptions {
  /** Wait before the run after the first one the peer's store failed. @default 1000 */
  firstMs?: number;
  /** Longest wait. @default 300000 */
  maxMs?: number;
  /** @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/** Codes of a peer's `SyncError` that say its store, not the run, failed. */
const PEER_STORE_CODES: ReadonlySet<string> = new Set(['STORE_UNAVAILABLE', 'STORE_CLOSED']);

/** Whether a `SyncError` code from the peer says its store failed. */
export function isPeerStoreFailure(code: string): boolean {
  return PEER_STORE_CODES.has(code);
}

export interface RunBackoff {
  /** The wait before the next run may start (0: none), and how many runs failed in a row. */
  pending(): { delayMs: number; failures: number };
  /**
   * Resolves once the next run may start: at once, after the wait, or when `cancel` resolves
   * (the sync closes).
   */
  wait(cancel: Promise<unknown>): Promise<void>;
  /** A run ended on the peer's store failure. */
  storeFailed(): void;
  /** A run the peer answered (whatever its outcome). */
  answered(): void;
}

export function createRunBackoff(options: RunBackoffOptions = {}): RunBackoff {
  const scheduler = options.scheduler ?? asyncScheduler;
  const firstMs = options.firstMs ?? 1000;
  const maxMs = options.maxMs ?? 300_000;
  let failures = 0;
  /** When the next run may start (scheduler time). */
  let notBefore = 0;

  const delayFor = (n: number): number => (n === 0 ? 0 : Math.min(maxMs, firstMs * 2 ** (n - 1)));

  return {
    pending: () => ({ delayMs: Math.max(0, notBefore - scheduler.now()), failures }),
    wait(cancel) {
      const delay = notBefore - scheduler.now();
      if (delay <= 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const sub = timer(delay, scheduler).subscribe(() => resolve());
        void cancel.then(() => {
          sub.unsubscribe();
          resolve();
        });
      });
    },
    storeFailed() {
      failures++;
      notBefore = scheduler.now() + delayFor(failures);
    },
    answered() {
      failures = 0;
      notBefore = 0;
    },
  };
}
