/**
 * The `backoffice_unreachable` condition of a channel: a payment on it waits for the VASP's back
 * office (the webhook business, docs/backoffice.md), which has failed to answer the same question
 * `unreachableAfterFailures` times (timeout, refused, an error status, an unsigned or malformed
 * answer). Raised once per channel; cleared (`backoffice_reachable`) by the next valid answer to a
 * question about that channel. Counts only: no timer of its own, time read from the scheduler.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject } from 'rxjs';
import type { HealthEvent } from './status.js';

/** One attempt of the back office, as the webhook business reports it (structurally). */
export type BackofficeAttempt =
  | { readonly peer: string; readonly ok: true; readonly id: string }
  | { readonly peer: string; readonly ok: false; readonly id: string; readonly error: string };

/** A channel whose payments wait for the back office now. */
export interface BackofficeSnapshot {
  peer: string;
  /** When it was raised (scheduler clock). */
  sinceMs: number;
  /** The questions that failed so far. */
  requests: number;
  /** The last failure. */
  error: string;
}

export interface BackofficeTracker {
  report(attempt: BackofficeAttempt): void;
  snapshot(): BackofficeSnapshot[];
  /** `backoffice_unreachable` and `backoffice_reachable` (hot; completes on `close`). */
  readonly events$: Observable<HealthEvent>;
  close(): void;
}

interface PeerState {
  /** question id → its failures */
  failing: Map<string, number>;
  raised?: { sinceMs: number; error: string };
}

/** Most questions remembered per channel (a flood of distinct failing ones stays bounded). */
const MAX_TRACKED = 1000;

export function createBackofficeTracker(
  options: { unreachableAfterFailures?: number } = {},
  deps: { scheduler?: SchedulerLike } = {},
): BackofficeTracker {
  const after = options.unreachableAfterFailures ?? 3;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const events = new Subject<HealthEvent>();
  const peers = new Map<string, PeerState>();
  let closed = false;

  function emit(event: HealthEvent): void {
    if (!closed) events.next(event);
  }

  return {
    report(attempt) {
      let s = peers.get(attempt.peer);
      if (attempt.ok) {
        if (!s) return;
        peers.delete(attempt.peer);
        if (s.raised) {
          const atMs = scheduler.now();
          emit({
            kind: 'backoffice_reachable',
            peer: attempt.peer,
            atMs,
            unreachableMs: atMs - s.raised.sinceMs,
          });
        }
        return;
      }
      if (!s) {
        s = { failing: new Map() };
        peers.set(attempt.peer, s);
      }
      const failures = (s.failing.get(attempt.id) ?? 0) + 1;
      if (s.failing.size < MAX_TRACKED || s.failing.has(attempt.id)) s.failing.set(attempt.id, failures);
      if (s.raised) {
        s.raised.error = attempt.error;
        return;
      }
      if (failures < after) return;
      const atMs = scheduler.now();
      s.raised = { sinceMs: atMs, error: attempt.error };
      emit({ kind: 'backoffice_unreachable', peer: attempt.peer, atMs, failures, error: attempt.error });
    },
    snapshot() {
      const out: BackofficeSnapshot[] = [];
      for (const [peer, s] of peers) {
        if (!s.raised) continue;
        out.push({ peer, sinceMs: s.raised.sinceMs, requests: s.failing.size, error: s.raised.error });
      }
      return out;
    },
    events$: events.asObservable(),
    close() {
      if (closed) return;
      closed = true;
      events.complete();
    },
  };
}
