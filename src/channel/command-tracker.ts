import { ReplaySubject, type SchedulerLike, type Subject } from 'rxjs';
import { isParleyError } from '../errors.js';
import type { OutgoingCommand, ResponseOutcome } from './channel-core.js';
import { type ChannelEvent, type CommandOutcome, writtenStatuses } from './channel-events.js';
import type { FrameWriter } from './frame-writer.js';

/**
 * What the commands tracked without a final response wait on, counted: the answer to "why is
 * this command still in flight" when it stays so (`Channel.inflightStates`).
 */
export interface InflightStates {
  /** Not written to any connection yet (no connection since it was queued). */
  unsent: number;
  /** Written, and no answer since its last write. */
  unanswered: number;
  /** The peer answered `wait` to its last write: resent after its backoff. */
  waiting: number;
  /**
   * The peer answered it, but the answer could not end it here: a success on a version this
   * node already consumed (a fork), or an answer to a command already final in the store.
   */
  unapplied: number;
  /** How long the oldest written and unanswered one has been waiting for its answer, ms; null when none. */
  oldestUnansweredMs: number | null;
}

export interface TrackerOptions {
  retransmitMs: number;
  retransmitCapMs: number;
}

/**
 * The commands of mine a channel tracks until their final response, and when each goes out
 * again: on every new connection, after the peer's `wait` (after a backoff), or as a probe of a
 * peer that went quiet.
 */
export interface CommandTracker {
  /** Starts tracking a command (idempotent: a tracked cid keeps its state). */
  track(command: OutgoingCommand): Tracking;
  /** Writes a command on the live connection, if any; a resend waits behind backpressure. */
  transmit(t: Tracking): void;
  /** Every tracked command, oldest first (on a new connection). */
  transmitAll(): void;
  /** What a response to one of my commands meant for it. */
  finish(outcome: ResponseOutcome): void;
  /** The peer answered a command of mine (or a connection came up). */
  answered(): void;
  /** Resends due commands: those the peer answered `wait`, and at most one probe. */
  sweep(): void;
  /** LIP-1 HTTP: a request that got no usable answer goes out again after its backoff. */
  undelivered(cid: string): void;
  retransmitNow(): void;
  /** What the tracked commands wait on. */
  states(): InflightStates;
  abandon(cid: string, error: Error): void;
  /** Stops tracking every command; each outcome stream errors with `errorFor(cid)`. */
  dropAll(errorFor: (cid: string) => Error): void;
  readonly size: number;
}

export interface Tracking {
  command: OutgoingCommand;
  attempts: number;
  nextAttemptAt: number;
  /** When it was last written to a connection. */
  sentAt: number;
  /** The peer answered `wait`: resend after the backoff whatever else happens. */
  retry: boolean;
  /** How many times the peer answered `wait`. */
  waits: number;
  /** What the peer answered since its last write (see {@link InflightStates}). */
  answer: 'none' | 'wait' | 'unapplied';
  outcome: ReplaySubject<CommandOutcome>;
}

export function createCommandTracker(
  options: TrackerOptions,
  deps: {
    peer: string;
    scheduler: SchedulerLike;
    events: Subject<ChannelEvent>;
    outcomes: Subject<CommandOutcome>;
    /** The writer of the live connection; undefined when none. */
    writer(): FrameWriter | undefined;
  },
): CommandTracker {
  const { peer, events } = deps;
  const { retransmitMs, retransmitCapMs } = options;
  const tracking = new Map<string, Tracking>();
  /** When the peer last answered a command of ours (or the connection came up). */
  let lastAnswerAt = 0;
  /** When the last timer resend went out (see `sweep`). */
  let lastProbeAt = 0;
  const now = (): number => deps.scheduler.now();
  const backoff = (attempts: number): number =>
    Math.min(retransmitCapMs, retransmitMs * 2 ** Math.max(0, attempts - 1)) * (0.5 + Math.random() * 0.5);

  function transmit(t: Tracking): void {
    const writer = deps.writer();
    if (!writer) return; // sent when a connection is attached
    if (t.attempts > 0 && writer.backlog > 0) {
      // The socket is backpressured: a retransmission would only pile up behind it.
      t.nextAttemptAt = now() + backoff(t.attempts);
      return;
    }
    t.attempts++;
    t.retry = false;
    t.answer = 'none';
    t.sentAt = now();
    t.nextAttemptAt = t.sentAt + backoff(t.attempts);
    if (t.attempts > 1) events.next({ type: 'retransmit', peer, cid: t.command.cid, attempt: t.attempts });
    writer.write(t.command.requestJws);
  }

  return {
    track(command) {
      let t = tracking.get(command.cid);
      if (!t) {
        t = newTracking(command);
        tracking.set(command.cid, t);
      }
      return t;
    },
    transmit,
    transmitAll() {
      for (const t of tracking.values()) transmit(t);
    },
    finish(outcome) {
      const t = tracking.get(outcome.cid);
      if (t && outcome.kind !== 'final') t.answer = outcome.kind === 'retry' ? 'wait' : 'unapplied';
      if (outcome.kind === 'final') {
        tracking.delete(outcome.cid);
        events.next({
          type: 'command_final',
          peer,
          cid: outcome.cid,
          referenceId: t?.command.referenceId ?? outcome.request.command.payment.reference_id,
          status: outcome.status,
          code: outcome.code,
          ...writtenStatuses(peer, outcome.request, outcome.status),
        });
        deps.outcomes.next(outcome);
        if (t) {
          t.outcome.next(outcome);
          t.outcome.complete();
        }
      } else if (outcome.kind === 'retry' && t) {
        // `wait`: the peer lacks a dependency or holds the lock; retry after a backoff.
        t.retry = true;
        t.waits++;
        t.nextAttemptAt = now() + backoff(t.attempts);
        events.next({
          type: 'command_waiting',
          peer,
          cid: outcome.cid,
          referenceId: t.command.referenceId,
          waits: t.waits,
        });
      } else if (outcome.kind === 'fork') {
        events.next({ type: 'fork', peer, cid: outcome.cid });
      }
    },
    answered() {
      lastAnswerAt = now();
    },
    // On a live connection (TCP: in order, nothing lost) every command sent gets an answer: a
    // result, or `wait` when the peer cannot decide it now, which asks for a resend after the
    // backoff. Everything pending is resent on each new connection. A timer resend is only a
    // probe for a peer that went quiet with commands unanswered (busy resyncing, or a bug): one
    // command, the oldest due, per `retransmitMs` of quiet. Resending every command of a deep
    // pipeline on its own timer turned bursts into retransmission storms: each resend costs the
    // peer a signature check and a lookup, which delayed its answers further.
    sweep() {
      if (!deps.writer()) return;
      const t0 = now();
      let probe = t0 - Math.max(lastAnswerAt, lastProbeAt) >= retransmitMs;
      for (const t of tracking.values()) {
        if (t.nextAttemptAt > t0) continue;
        if (t.retry) transmit(t);
        else if (probe) {
          probe = false;
          lastProbeAt = t0;
          transmit(t);
        }
      }
    },
    undelivered(cid) {
      const t = tracking.get(cid);
      if (!t) return;
      t.retry = true;
      t.nextAttemptAt = now() + backoff(t.attempts);
    },
    retransmitNow() {
      for (const t of tracking.values()) t.nextAttemptAt = 0;
    },
    states: () => statesOf(tracking.values(), now()),
    abandon(cid, error) {
      const t = tracking.get(cid);
      if (!t) return;
      tracking.delete(cid);
      events.next({
        type: 'command_dropped',
        peer,
        cid,
        code: isParleyError(error) ? error.code : 'INTERNAL',
      });
      t.outcome.error(error);
    },
    dropAll(errorFor) {
      const unfinished = [...tracking.values()];
      tracking.clear();
      for (const t of unfinished) t.outcome.error(errorFor(t.command.cid));
    },
    get size() {
      return tracking.size;
    },
  };
}

/** A command not yet written to any connection. */
function newTracking(command: OutgoingCommand): Tracking {
  return {
    command,
    attempts: 0,
    nextAttemptAt: 0,
    sentAt: 0,
    retry: false,
    waits: 0,
    answer: 'none',
    outcome: new ReplaySubject<CommandOutcome>(1),
  };
}

function statesOf(tracked: Iterable<Tracking>, t0: number): InflightStates {
  const out: InflightStates = {
    unsent: 0,
    unanswered: 0,
    waiting: 0,
    unapplied: 0,
    oldestUnansweredMs: null,
  };
  for (const t of tracked) {
    if (t.attempts === 0) out.unsent++;
    else if (t.answer === 'wait') out.waiting++;
    else if (t.answer === 'unapplied') out.unapplied++;
    else {
      out.unanswered++;
      out.oldestUnansweredMs = Math.max(out.oldestUnansweredMs ?? 0, t0 - t.sentAt);
    }
  }
  return out;
}
