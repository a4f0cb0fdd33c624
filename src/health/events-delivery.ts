/**
 * The `events_undeliverable` condition of a node: the back-office events (docs/backoffice.md,
 * "Events") are delivered one at a time in order, so a receiver that keeps refusing (or not
 * answering) stops every later event behind the one it refuses. After
 * `undeliverableAfterFailures` failed attempts in a row the condition is raised, once; the next
 * successful delivery clears it (`events_deliverable`). Counts only: no timer of its own, time
 * read from the scheduler.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject } from 'rxjs';
import type { HealthEvent } from './status.js';

/** One delivery attempt, as the event delivery reports it (structurally). */
export type EventsDeliveryAttempt =
  | { readonly ok: true; readonly peer: string; readonly id: string }
  | { readonly ok: false; readonly peer: string; readonly id: string; readonly error: string };

/** The node's events wait behind an event its receiver does not take. */
export interface EventsDeliverySnapshot {
  /** The channel of the event at the head of the queue. */
  peer: string;
  /** That event's id. */
  eventId: string;
  /** When the condition was raised (scheduler clock). */
  sinceMs: number;
  /** Failed attempts in a row so far. */
  failures: number;
  /** The last failure. */
  error: string;
}

export interface EventsDeliveryTracker {
  report(attempt: EventsDeliveryAttempt): void;
  /** The condition while raised: none or one entry. */
  snapshot(): EventsDeliverySnapshot[];
  /** `events_undeliverable` and `events_deliverable` (hot; completes on `close`). */
  readonly events$: Observable<HealthEvent>;
  close(): void;
}

export function createEventsDeliveryTracker(
  options: { undeliverableAfterFailures?: number } = {},
  deps: { scheduler?: SchedulerLike } = {},
): EventsDeliveryTracker {
  const after = options.undeliverableAfterFailures ?? 5;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const events = new Subject<HealthEvent>();
  let failures = 0;
  let raised: EventsDeliverySnapshot | undefined;
  let closed = false;

  const emit = (event: HealthEvent): void => {
    if (!closed) events.next(event);
  };

  return {
    report(attempt) {
      if (attempt.ok) {
        failures = 0;
        if (raised) {
          const atMs = scheduler.now();
          emit({
            kind: 'events_deliverable',
            peer: attempt.peer,
            atMs,
            eventId: attempt.id,
            undeliverableMs: atMs - raised.sinceMs,
          });
          raised = undefined;
        }
        return;
      }
      failures += 1;
      if (raised) {
        raised.failures = failures;
        raised.error = attempt.error;
        raised.peer = attempt.peer;
        raised.eventId = attempt.id;
        return;
      }
      if (failures < after) return;
      const atMs = scheduler.now();
      raised = { peer: attempt.peer, eventId: attempt.id, sinceMs: atMs, failures, error: attempt.error };
      emit({
        kind: 'events_undeliverable',
        peer: attempt.peer,
        atMs,
        eventId: attempt.id,
        failures,
        error: attempt.error,
      });
    },
    snapshot() {
      return raised ? [{ ...raised }] : [];
    },
    events$: events.asObservable(),
    close() {
      if (closed) return;
      closed = true;
      events.complete();
    },
  };
}
