/**
 * Delivery of the back-office events (docs/backoffice.md, "Events") from the durable
 * `webhook_event` table:
 *
 * - webhook: each event POSTed, signed (`parley-signature`, as the back-office requests), one at
 *   a time in id order, so in order per payment; retried after a failure with backoff (injected
 *   scheduler) until a 2xx, then marked delivered. Each attempt is reported (`failures$`,
 *   `delivered$`): failures in a row become the node's `events_undeliverable` condition. At least once: an event delivered but not yet
 *   marked (a crash, a takeover) is delivered again, with the same `id`.
 * - With replicas, only the events of the channels this replica serves (`owned`) are delivered:
 *   the replica that takes a channel over goes on from that channel's oldest undelivered event.
 * - feed: every event, delivered or not, in id order on `events$`, for the Server-Sent Events
 *   route; `after(id)` replays what a reconnecting consumer missed.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { type HmacKey, SIGNATURE_HEADER, signBody } from '../business/backoffice-contract.js';
import type { EventRepository } from '../store/event-repository.js';
import { type EventBody, eventBody } from './event-body.js';

export interface EventDeliveryOptions {
  /** The receiver; without it nothing is POSTed (the feed still runs). */
  readonly url?: string;
  readonly key?: HmacKey;
  /** @default 5000 */
  readonly timeoutMs?: number;
  /** @default 500 */
  readonly retryBaseMs?: number;
  /** @default 60000 */
  readonly retryMaxMs?: number;
  /** How often the table is read without a kick (a takeover, another process's writes). @default 1000 */
  readonly pollMs?: number;
  /** Delivered events are kept this long (a pull consumer resumes within it); ms. @default 7 days */
  readonly retentionMs?: number;
  readonly scheduler?: SchedulerLike;
}

/** A failed delivery attempt (logged at warn as a node event, `event_delivery_failed`). */
export type DeliveryFailure = {
  readonly id: string;
  /** The channel of the event: its later events wait behind it. */
  readonly peer: string;
  readonly attempts: number;
  readonly error: string;
  readonly retryInMs: number;
};

export interface EventDelivery {
  /** New events may be in the table (a commit, a health record). */
  kick(): void;
  /** Every event, in id order, as it is read from the table (hot). */
  readonly events$: Observable<EventBody>;
  /** Failed webhook attempts (hot). */
  readonly failures$: Observable<DeliveryFailure>;
  /** Events the receiver took (hot): a failure followed by one of these is over. */
  readonly delivered$: Observable<{ readonly id: string; readonly peer: string }>;
  /** Events after `id` (a `sequence`), oldest first, at most `limit`. */
  after(sequence: number, limit: number): Promise<EventBody[]>;
  close(): Promise<void>;
}

const PAGE = 100;

export function createEventDelivery(
  options: EventDeliveryOptions,
  deps: {
    repo: EventRepository;
    me: string;
    epoch: string;
    /** The channels this replica serves (null: all). */
    owned(): readonly string[] | null;
  },
): EventDelivery {
  const scheduler = options.scheduler ?? asyncScheduler;
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 60_000;
  const pollMs = options.pollMs ?? 1000;
  const retentionMs = options.retentionMs ?? 7 * 24 * 3600_000;
  const events = new Subject<EventBody>();
  const failures = new Subject<DeliveryFailure>();
  const delivered = new Subject<{ readonly id: string; readonly peer: string }>();
  const timers = new Set<Subscription>();
  let closed = false;
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const inflight = new Set<AbortController>();

  /** Resolves after `ms`, or at once on close. */
  function sleep(ms: number): Promise<void> {
    const timer = new Promise<void>((resolve) => {
      const sub = scheduler.schedule(() => {
        timers.delete(sub);
        resolve();
      }, ms);
      timers.add(sub);
    });
    return Promise.race([timer, stopped]);
  }

  /** Delivers one event until a 2xx (or close). */
  async function deliver(body: EventBody): Promise<boolean> {
    for (let attempt = 1; !closed; attempt++) {
      try {
        await postEvent(options, body, { timeoutMs, scheduler, inflight });
        delivered.next({ id: body.id, peer: body.peer });
        return true;
      } catch (err) {
        const retryInMs = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempt - 1, 30));
        failures.next({ id: body.id, peer: body.peer, attempts: attempt, error: messageOf(err), retryInMs });
        await sleep(retryInMs);
      }
    }
    return false;
  }

  /** Webhook: undelivered events of the owned channels, in id order. */
  async function webhookLoop(): Promise<void> {
    while (!closed) {
      try {
        const owned = deps.owned();
        const page = await deps.repo.pending(owned, PAGE);
        if (page.length === 0) {
          await webhookIdle.wait();
          continue;
        }
        for (const row of page) {
          const now = deps.owned();
          if (now !== null && !now.includes(row.peer)) break; // given up: its new owner delivers it
          if (!(await deliver(eventBody(row, deps.me, deps.epoch)))) return;
          await deps.repo.markDelivered([row.id], scheduler.now());
        }
      } catch {
        await sleep(retryBaseMs); // the store failed: read again later
      }
    }
  }

  /**
   * Feed: every event once, in id order. Without a webhook an event counts as delivered once
   * read (it is kept `retentionMs` for pull consumers). Prunes old delivered events hourly.
   */
  async function feedLoop(): Promise<void> {
    let last = await deps.repo.lastId().catch(() => 0);
    let pruneAt = 0;
    while (!closed) {
      try {
        if (scheduler.now() >= pruneAt) {
          pruneAt = scheduler.now() + 3600_000;
          await deps.repo.prune(scheduler.now() - retentionMs);
        }
        const page = await deps.repo.after(last, PAGE);
        for (const row of page) {
          last = row.id;
          events.next(eventBody(row, deps.me, deps.epoch));
        }
        if (!options.url)
          await deps.repo.markDelivered(
            page.map((row) => row.id),
            scheduler.now(),
          );
        if (page.length < PAGE) await feedIdle.wait();
      } catch {
        await sleep(retryBaseMs);
      }
    }
  }

  // Each loop waits on its own kicks (the webhook loop may be busy retrying).
  const webhookIdle = createIdle(scheduler, pollMs);
  const feedIdle = createIdle(scheduler, pollMs);
  const loops = [feedLoop(), options.url ? webhookLoop() : Promise.resolve()];

  return {
    kick() {
      webhookIdle.kick();
      feedIdle.kick();
    },
    events$: events.asObservable(),
    failures$: failures.asObservable(),
    delivered$: delivered.asObservable(),
    async after(sequence, limit) {
      return (await deps.repo.after(sequence, limit)).map((row) => eventBody(row, deps.me, deps.epoch));
    },
    async close() {
      if (closed) return;
      closed = true;
      stop();
      for (const c of inflight) c.abort();
      for (const t of timers) t.unsubscribe();
      timers.clear();
      webhookIdle.close();
      feedIdle.close();
      await Promise.allSettled(loops);
      events.complete();
      failures.complete();
      delivered.complete();
    },
  };
}
/** One signed POST of an event; throws unless the receiver answers 2xx in time. */
async function postEvent(
  options: EventDeliveryOptions,
  body: EventBody,
  ctx: { timeoutMs: number; scheduler: SchedulerLike; inflight: Set<AbortController> },
): Promise<void> {
  const { timeoutMs, scheduler, inflight } = ctx;
  const text = JSON.stringify(body);
  const controller = new AbortController();
  inflight.add(controller);
  const timeout = scheduler.schedule(() => controller.abort(), timeoutMs);
  try {
    const res = await fetch(options.url!, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': body.id,
        ...(options.key ? { [SIGNATURE_HEADER]: signBody(options.key, text, scheduler.now()) } : {}),
      },
      body: text,
      signal: controller.signal,
    });
    await res.arrayBuffer();
    if (res.status < 200 || res.status > 299) throw new Error(`the receiver answered HTTP ${res.status}`);
  } catch (err) {
    if (controller.signal.aborted) throw new Error(`no answer within ${timeoutMs} ms`);
    throw err;
  } finally {
    timeout.unsubscribe();
    inflight.delete(controller);
  }
}

/** Waits until a kick or the poll interval; a kick while not waiting is kept for the next wait. */
function createIdle(
  scheduler: SchedulerLike,
  pollMs: number,
): { wait(): Promise<void>; kick(): void; close(): void } {
  let wake: (() => void) | undefined;
  let kicked = false;
  let closed = false;
  return {
    wait() {
      if (kicked || closed) {
        kicked = false;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        const sub = scheduler.schedule(() => done(), pollMs);
        const done = (): void => {
          sub.unsubscribe();
          wake = undefined;
          resolve();
        };
        wake = done;
      });
    },
    kick() {
      if (wake) wake();
      else kicked = true;
    },
    close() {
      closed = true;
      wake?.();
    },
  };
}

function messageOf(err: unknown): string {
  if (err instanceof Error)
    return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return String(err);
}
