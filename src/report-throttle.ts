/**
 * Reports that anyone able to send a frame or a request could trigger without bound (a refused
 * frame, a refused request), cut to one line per key and interval. Unlike {@link KeyedThrottle}
 * (which says how many were held back only at the key's next pass), the count held back is
 * flushed on a timer at the end of the interval, so the last burst of a flood is said too.
 *
 * - The first report of a key is emitted at once (`suppressed` 0) and opens an interval.
 * - Reports of that key within the interval are held back; at its end the last one is emitted
 *   with `suppressed` = how many were held back, and a new interval opens. An interval in
 *   which nothing was held back ends the key.
 * - Past `maxKeys` keys at once, reports of other keys share one bucket, flushed the same way
 *   (the last of them, with the count), so the set of keys stays bounded.
 */
import { asyncScheduler, type SchedulerLike, type Subscription } from 'rxjs';

export interface ReportThrottle<E> {
  /** Emits `event` now, or holds it back (see the module comment). */
  report(key: string, event: E): void;
  /** Emits what is held back now and stops the timers. */
  close(): void;
}

export interface ReportThrottleOptions<E> {
  intervalMs: number;
  /** Most keys with an open interval at once. */
  maxKeys: number;
  /** Where each report goes; `suppressed`: how many were held back before it (0 for a first one). */
  emit(event: E, suppressed: number): void;
  /** Timers (virtual time in tests). @default asyncScheduler */
  scheduler?: SchedulerLike;
}

interface Window<E> {
  held: number;
  last: E | undefined;
  timer: Subscription;
}

/** The key of the shared bucket past `maxKeys`. */
const OVERFLOW = '\u0000overflow';

export function createReportThrottle<E>(options: ReportThrottleOptions<E>): ReportThrottle<E> {
  const { intervalMs, maxKeys, emit } = options;
  const scheduler = options.scheduler ?? asyncScheduler;
  const windows = new Map<string, Window<E>>();
  let closed = false;

  function open(key: string): Window<E> {
    const window: Window<E> = {
      held: 0,
      last: undefined,
      timer: scheduler.schedule(() => end(key), intervalMs),
    };
    windows.set(key, window);
    return window;
  }

  function end(key: string): void {
    const window = windows.get(key);
    if (!window) return;
    windows.delete(key);
    if (window.held === 0 || window.last === undefined) return;
    emit(window.last, window.held);
    // Still flooding: the next line comes at the end of the next interval at the earliest.
    if (!closed) open(key);
  }

  return {
    report(key, event) {
      if (closed) return;
      const bucket = windows.has(key) || windows.size < maxKeys ? key : OVERFLOW;
      const window = windows.get(bucket);
      if (window) {
        window.held++;
        window.last = event;
        return;
      }
      const fresh = open(bucket);
      if (bucket === OVERFLOW) {
        // Not said one by one: counted with the other keys past the limit.
        fresh.held = 1;
        fresh.last = event;
        return;
      }
      emit(event, 0);
    },
    close() {
      closed = true;
      for (const [key, window] of [...windows]) {
        window.timer.unsubscribe();
        end(key);
      }
    },
  };
}
