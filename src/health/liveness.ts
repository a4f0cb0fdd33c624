import type { SchedulerLike } from 'rxjs';
import type { PhiDetector } from './failure-detector.js';
import type { ResolvedHealthOptions } from './options.js';
import type { HealthEvent, HealthState, TransitionCause } from './status.js';

const RANK: Record<HealthState, number> = { unknown: 0, healthy: 1, suspect: 2, down: 3 };
/** A deadline this close counts as reached (timers have 1 ms resolution anyway). */
const DEADLINE_SLACK_MS = 0.5;

/**
 * The health state of one channel from its heartbeats (`unknown → healthy → suspect → down`):
 * no polling, one action scheduled at the moment phi will cross the next threshold.
 */
export interface Liveness {
  readonly state: HealthState;
  /** When the state was entered. */
  readonly sinceMs: number;
  /** The peer was heard from (a heartbeat, or a handshake): `healthy` unless it already is. */
  heard(cause: TransitionCause, phi: number): void;
  /** Sets the next check after a heartbeat (or stops checking while down). */
  scheduleCheck(): void;
  /**
   * Judges no silence until `untilMs`: the peer handed the channel to another of its replicas
   * (close 4421), which connects in a moment. Heard from again, the hold ends. One hold per
   * heartbeat heard: a connection that closes with 4421 before its first heartbeat (a replica
   * that accepts the handshake and hands the channel on again) gets none, so a peer whose
   * replicas keep handing the channel round is judged on its silence like any other.
   */
  holdUntil(untilMs: number): void;
  /** Stops every timer. */
  close(): void;
}

/** How long the peer has been silent at `at`; null if it was never heard. */
export function silentMsOf(detector: PhiDetector, at: number): number | null {
  const last = detector.lastArrivalMs;
  return last === undefined ? null : at - last;
}

export function createLiveness(
  o: ResolvedHealthOptions,
  deps: {
    peer: string;
    scheduler: SchedulerLike;
    detector: PhiDetector;
    /** See `ChannelHealthDeps.afterIo`. */
    afterIo(fn: () => void): () => void;
    emit(event: HealthEvent): void;
    /** A check found the peer `down`. */
    onDown(): void;
  },
): Liveness {
  const { peer, scheduler, detector } = deps;
  const now = (): number => scheduler.now();
  let state: HealthState = 'unknown';
  let sinceMs = now();
  let check: { unsubscribe(): void } | undefined;
  /** When `check` fires. */
  let checkAt = Number.POSITIVE_INFINITY;
  let cancelJudge: (() => void) | undefined;
  let closed = false;
  /** No silence is judged before this (a hand-over under way). */
  let holdUntilMs = Number.NEGATIVE_INFINITY;
  /** A hold was granted since the last heartbeat heard. */
  let holdSpent = false;

  function transition(to: HealthState, cause: TransitionCause, phi: number): void {
    if (to === state) return;
    const at = now();
    const from = state;
    state = to;
    sinceMs = at;
    deps.emit({
      kind: 'transition',
      peer,
      atMs: at,
      from,
      to,
      cause,
      phi,
      silentMs: silentMsOf(detector, at),
    });
  }

  // A peer never heard from since start is `down` after the grace.
  const startup = scheduler.schedule(() => {
    if (state === 'unknown') transition('down', 'startup', 0);
  }, o.startupGraceMs);

  const nextThreshold = (): number => (state === 'healthy' ? o.suspectPhi : o.downPhi);

  /**
   * One action at the moment phi crosses the next threshold (nothing while down). Each
   * heartbeat moves that moment later; the action already set is then left alone and, when
   * it fires early, sets itself again: one timer per deadline crossed or ~2 heartbeats, not a
   * timer cancelled and made on every heartbeat (1,000 channels at 1 Hz).
   */
  function scheduleCheck(): void {
    cancelJudge?.();
    cancelJudge = undefined;
    if (closed || state === 'down' || state === 'unknown') {
      check?.unsubscribe();
      check = undefined;
      checkAt = Number.POSITIVE_INFINITY;
      return;
    }
    const at = Math.max(detector.deadline(nextThreshold()), holdUntilMs);
    if (check && checkAt <= at) return;
    check?.unsubscribe();
    checkAt = at;
    check = scheduler.schedule(onTimer, Math.max(0, at - now()));
  }

  function onTimer(): void {
    check = undefined;
    checkAt = Number.POSITIVE_INFINITY;
    if (now() + DEADLINE_SLACK_MS < Math.max(detector.deadline(nextThreshold()), holdUntilMs)) {
      scheduleCheck(); // a heartbeat moved the deadline
      return;
    }
    // At the deadline, first let the event loop read the sockets: if this process was busy or
    // paused, the peer's heartbeats are waiting there and must count before silence does.
    cancelJudge = deps.afterIo(judge);
  }

  function judge(): void {
    cancelJudge = undefined;
    const t = now();
    // Compare times, not phi: at its own deadline, phi may fall a rounding error short of the
    // threshold, and the check would be rescheduled at the same instant for ever.
    const reached = (threshold: number): boolean => t + DEADLINE_SLACK_MS >= detector.deadline(threshold);
    const next: HealthState = reached(o.downPhi) ? 'down' : reached(o.suspectPhi) ? 'suspect' : state;
    if (RANK[next] > RANK[state]) transition(next, 'silence', detector.phi(t));
    if (state === 'down') deps.onDown();
    scheduleCheck();
  }

  return {
    get state() {
      return state;
    },
    get sinceMs() {
      return sinceMs;
    },
    heard(cause, phi) {
      holdUntilMs = Number.NEGATIVE_INFINITY;
      if (cause === 'heartbeat') holdSpent = false;
      if (state !== 'healthy') transition('healthy', cause, phi);
    },
    scheduleCheck,
    holdUntil(untilMs) {
      if (holdSpent) return;
      holdSpent = true;
      holdUntilMs = Math.max(holdUntilMs, untilMs);
      scheduleCheck();
    },
    close() {
      check?.unsubscribe();
      cancelJudge?.();
      startup.unsubscribe();
      closed = true;
    },
  };
}
