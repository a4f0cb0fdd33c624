import { type Observable, Subject, type Subscription } from 'rxjs';
import type { Channel, CommandOutcome, IncomingCommand } from '../channel/channel.js';
import { isParleyError } from '../errors.js';
import type { PaymentObject } from '../protocol/index.js';
import type { ParleyStore } from '../store/types.js';
import type { BusinessContext } from './business-context.js';
import { nextPaymentVersion } from './payment-processor.js';

/** What the business driver reports. */
export type BusinessEvent =
  | { type: 'reacted'; peer: string; referenceId: string; cid: string }
  | { type: 'command_failed'; peer: string; referenceId: string; cid: string; code: string | null }
  | { type: 'business_error'; peer: string; referenceId: string; message: string };

/**
 * Drives the business layer on one channel, as the reference's processor does: after each
 * committed command of the peer, compute my next version and send it. Failed commands of mine
 * (`used_dependencies`, a command error) are reported once, never retried blindly.
 *
 * Crash tolerance (the reference lost this, its issue #51): on start, every open object whose
 * head was written by the peer and that has no command of mine pending gets its reaction again.
 */
export interface BusinessDriver {
  readonly events$: Observable<BusinessEvent>;
  /** Re-run reactions that a crash may have lost. */
  recover(): Promise<number>;
  close(): void;
}

export function createBusinessDriver(deps: {
  me: string;
  channel: Channel;
  store: ParleyStore;
  business: BusinessContext;
  /** Is a command of mine pending on this object? */
  hasPending(referenceId: string): boolean;
}): BusinessDriver {
  const { me, channel, store, business } = deps;
  const events = new Subject<BusinessEvent>();
  const peer = channel.peer;

  async function react(payment: PaymentObject, version: string): Promise<void> {
    let next: PaymentObject | null;
    try {
      next = await nextPaymentVersion({ payment, me, business });
    } catch (err) {
      events.next({
        type: 'business_error',
        peer,
        referenceId: payment.reference_id,
        message: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    if (next === null) return;
    channel.send({ payment: next, readVersion: version }).subscribe({
      error: (err: unknown) => {
        // The head moved on (a newer command arrived, or mine is pending): that command's own
        // reaction takes over. The channel closed, or another replica owns it now: whoever
        // serves it next drives the payment on (`recover`).
        if (isParleyError(err, 'CHANNEL_DEPENDENCY_UNAVAILABLE')) return;
        if (isParleyError(err, 'CHANNEL_CLOSED') || isParleyError(err, 'STORE_LEASE_LOST')) return;
        events.next({
          type: 'business_error',
          peer,
          referenceId: payment.reference_id,
          message: err instanceof Error ? err.message : String(err),
        });
      },
    });
    events.next({ type: 'reacted', peer, referenceId: payment.reference_id, cid: version });
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
      for (;;) {
        const page = await store.openObjects(peer, after, 500);
        if (page.length === 0) break;
        for (const head of page) {
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
    close() {
      for (const s of subs) s.unsubscribe();
      events.complete();
    },
  };
}
