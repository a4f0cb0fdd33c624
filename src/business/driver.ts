import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription, timer } from 'rxjs';
import type { Channel, CommandOutcome, IncomingCommand } from '../channel/channel.js';
import { isParleyError } from '../errors.js';
import { createSlicer } from '../event-loop.js';
import type { PaymentObject } from '../protocol/index.js';
import type { ParleyStore } from '../store/types.js';
import type { BusinessContext, PaymentForkLost } from './business-context.js';
import { nextPaymentVersion } from './payment-processor.js';

/** What the business driver reports. */
export type BusinessEvent =
  /**
   * My business reacted to the peer's command `cid`: my next version, command `sent`, is durable
   * in the outbox (never emitted for a reaction that could not be stored).
   */
  | { type: 'reacted'; peer: string; referenceId: string; cid: string; sent: string }
  | { type: 'command_failed'; peer: string; referenceId: string; cid: string; code: string | null }
  | {
      type: 'business_error';
      peer: string;
      referenceId: string;
      message: string;
      /** When the reaction runs again (a failure that may pass, e.g. the store unavailable). */
      retryInMs?: number;
      /** The reference quoted to the peer when the error aborted the payment (`payment_vasp_error`). */
      ref?: string;
    };

/**
 * Drives the business layer on one channel, as the reference's processor does: after each
 * committed command of the peer, compute my next version and send it. Failed commands of mine
 * (`used_dependencies`, a command error) are reported once, never retried blindly.
 *
 * Crash tolerance (the reference lost this, its issue #51): on start, every open object whose
 * head was written by the peer and that has no command of mine pending gets its reaction again.
 * A reaction that could not be sent for a reason that may pass (the store unavailable, say) runs
 * again after a backoff, for as long as the peer's version is still the head: otherwise both
 * sides would wait for each other, with equal digests, until the next restart.
 */
export interface BusinessDriver {
  readonly events$: Observable<BusinessEvent>;
  /** Re-run reactions that a crash may have lost. */
  recover(): Promise<number>;
  /** Tells the business that my branch of a payment lost a fork (`paymentForkLost`). */
  forkLost(fork: Omit<PaymentForkLost, 'payment' | 'other'>): Promise<void>;
  close(): void;
}

export interface BusinessDriverOptions {
  /** First wait before a failed reaction runs again, doubled each time; ms. @default 1000 */
  retryBaseMs?: number;
  /** Longest wait between two runs of a failed reaction; ms. @default 60000 */
  retryMaxMs?: number;
  scheduler?: SchedulerLike;
}

/** Send errors after which the reaction is not run again (it is moot, or someone else's now). */
const FINAL_SEND_ERRORS = [
  // The head moved on (a newer command arrived, or mine is pending): that command's reaction.
  'CHANNEL_DEPENDENCY_UNAVAILABLE',
  // My business made a version the rules refuse: running it again makes the same.
  'CHANNEL_INVALID_COMMAND',
  // The channel closed, or another replica owns it now: whoever serves it next drives the
  // payment on (`recover`).
  'CHANNEL_CLOSED',
  'STORE_LEASE_LOST',
  'STORE_CLOSED',
  // Resync dropped it: the peer's branch won the fork, and the business reacts to its head.
  'SYNC_FORK_LOST',
] as const;

export function createBusinessDriver(
  deps: {
    me: string;
    channel: Channel;
    store: ParleyStore;
    business: BusinessContext;
    /** Is a command of mine pending on this object? */
    hasPending(referenceId: string): boolean;
  },
  options: BusinessDriverOptions = {},
): BusinessDriver {
  const { me, channel, store, business } = deps;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 60_000;
  const scheduler = options.scheduler ?? asyncScheduler;
  const events = new Subject<BusinessEvent>();
  const peer = channel.peer;
  let closed = false;
  /** referenceId → the timer of its reaction's next run. */
  const retries = new Map<string, Subscription>();

  function retryLater(referenceId: string, version: string, attempt: number, message: string): void {
    const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempt, 30));
    events.next({ type: 'business_error', peer, referenceId, message, retryInMs: delay });
    if (closed) return;
    retries.get(referenceId)?.unsubscribe();
    retries.set(
      referenceId,
      timer(delay, scheduler).subscribe(() => {
        retries.delete(referenceId);
        void reactAgain(referenceId, version, attempt + 1);
      }),
    );
  }

  /** The reaction to `version` again, if it is still the head, the peer's, with nothing of mine pending. */
  async function reactAgain(referenceId: string, version: string, attempt: number): Promise<void> {
    if (closed || deps.hasPending(referenceId)) return;
    let payment: PaymentObject;
    try {
      const head = await store.head(peer, referenceId);
      if (!head?.open || head.headVersion !== version) return;
      const last = (await store.versions(peer, referenceId)).at(-1);
      if (last?.version !== version) return;
      payment = JSON.parse(last.payment) as PaymentObject;
    } catch (err) {
      retryLater(referenceId, version, attempt, messageOf(err));
      return;
    }
    await react(payment, version, attempt);
  }

  async function react(payment: PaymentObject, version: string, attempt = 0): Promise<void> {
    if (closed) return;
    let next: PaymentObject | null;
    try {
      next = await nextPaymentVersion({
        payment,
        me,
        business,
        // The payment is aborted (`payment_vasp_error`) and this is the reference quoted to the peer.
        onUnexpectedError: (err, ref) =>
          events.next({
            type: 'business_error',
            peer,
            referenceId: payment.reference_id,
            message: messageOf(err),
            ref,
          }),
      });
    } catch (err) {
      events.next({
        type: 'business_error',
        peer,
        referenceId: payment.reference_id,
        message: messageOf(err),
      });
      return;
    }
    if (next === null) return;
    const submitted = channel.submit({ payment: next, readVersion: version });
    submitted.queued.then(
      ({ cid }) =>
        events.next({ type: 'reacted', peer, referenceId: payment.reference_id, cid: version, sent: cid }),
      () => undefined, // reported through the outcome below
    );
    submitted.outcome$.subscribe({
      error: (err: unknown) => {
        if (FINAL_SEND_ERRORS.some((code) => isParleyError(err, code))) {
          if (isParleyError(err, 'CHANNEL_INVALID_COMMAND')) {
            events.next({
              type: 'business_error',
              peer,
              referenceId: payment.reference_id,
              message: err.message,
            });
          }
          return;
        }
        // Sent nothing (the store failed to queue it, say): the same reaction again, later.
        retryLater(payment.reference_id, version, attempt, messageOf(err));
      },
    });
  }

  const subs: Subscription[] = [
    channel.commands$.subscribe((incoming: IncomingCommand) => {
      if (incoming.status !== 'success') return;
      void react(incoming.request.command.payment, incoming.record.writeVersion);
    }),
    channel.outcomes$.subscribe((outcome: CommandOutcome) => {
      if (outcome.status === 'success') return;
      events.next({
        type: 'command_failed',
        peer,
        referenceId: outcome.record.referenceId,
        cid: outcome.cid,
        code: outcome.code,
      });
    }),
  ];

  return {
    events$: events.asObservable(),
    async recover() {
      let after: string | null = null;
      let count = 0;
      // Heartbeats and frames run between slices: a store of many open objects takes seconds.
      const pause = createSlicer();
      for (;;) {
        const page = await store.openObjects(peer, after, 500);
        if (page.length === 0) break;
        for (const head of page) {
          await pause();
          if (closed) return count;
          after = head.referenceId;
          if (deps.hasPending(head.referenceId)) continue;
          const written = await store.findCommand(peer, head.headVersion);
          if (written?.direction !== 'inbound' || written.status !== 'success') continue;
          const versions = await store.versions(peer, head.referenceId);
          const last = versions.at(-1);
          if (!last || last.version !== head.headVersion) continue;
          await react(JSON.parse(last.payment) as PaymentObject, head.headVersion);
          count++;
        }
      }
      return count;
    },
    async forkLost(fork) {
      if (closed || !business.paymentForkLost) return;
      try {
        const last = (await store.versions(peer, fork.referenceId)).at(-1);
        const payment = last ? (JSON.parse(last.payment) as PaymentObject) : undefined;
        await business.paymentForkLost({ ...fork, other: peer, payment });
      } catch (err) {
        events.next({ type: 'business_error', peer, referenceId: fork.referenceId, message: messageOf(err) });
      }
    },
    close() {
      closed = true;
      for (const retry of retries.values()) retry.unsubscribe();
      retries.clear();
      for (const s of subs) s.unsubscribe();
      events.complete();
    },
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
