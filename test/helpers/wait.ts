/**
 * Waiting in tests without fixed sleeps: on a stream's value, or on a state that a change
 * notification says may have moved. Every wait is bounded and fails with what it waited for
 * (a budget is acceptance of behaviour, not a speed measurement).
 */
import { filter, firstValueFrom, type Observable, Subject, take, timeout } from 'rxjs';

export const WAIT_BUDGET_MS = 30_000;

/** The first value of `source$` that matches (subscribe before acting), or a clear failure. */
export function nextMatch<T>(
  source$: Observable<T>,
  match: (value: T) => boolean,
  what: string,
  ms = WAIT_BUDGET_MS,
): Promise<T> {
  return firstValueFrom(
    source$.pipe(
      filter(match),
      take(1),
      timeout({ first: ms, with: () => Promise.reject(new Error(`timed out waiting for ${what}`)) }),
    ),
  );
}

/**
 * A state that changes in callbacks: call `changed()` after each change; `until(check)` resolves
 * once `check()` holds (checked now and after each change), or fails after the budget.
 */
export function changes(): {
  changed(): void;
  until(check: () => boolean | Promise<boolean>, what: string, ms?: number): Promise<void>;
} {
  const subject = new Subject<void>();
  let version = 0;
  return {
    changed() {
      version++;
      subject.next();
    },
    async until(check, what, ms = WAIT_BUDGET_MS) {
      const deadline = Date.now() + ms;
      for (;;) {
        const seen = version;
        if (await check()) return;
        // A change during an (async) check: check again at once.
        if (version === seen) await nextMatch(subject, () => true, what, Math.max(1, deadline - Date.now()));
      }
    },
  };
}
