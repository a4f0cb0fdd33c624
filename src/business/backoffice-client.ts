/**
 * The HTTP side of the webhook business: signed POSTs to the back office, verified answers, a
 * timeout, retries with backoff, one request per question at a time (docs/backoffice.md).
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { ParleyError } from '../errors.js';
import {
  type BackofficeRequest,
  type HmacKey,
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  signatureProblem,
  signBody,
} from './backoffice-contract.js';

/** Options of the webhook business and its client. */
export interface WebhookBusinessOptions {
  /** The back office's URL (every request is a POST to it). */
  readonly url: string;
  /** The shared secret that signs both ways, and its id. */
  readonly key: HmacKey;
  /** Longest wait for one answer; ms. @default 5000 */
  readonly timeoutMs?: number;
  /** First wait before a `decide` is asked again, doubled each time; ms. @default 500 */
  readonly retryBaseMs?: number;
  /** Longest wait between two attempts; ms. @default 30000 */
  readonly retryMaxMs?: number;
  /** How far an answer's timestamp may be from now; ms. @default 300000 */
  readonly replayWindowMs?: number;
  /** Timers (timeouts, backoff) and the clock of the signatures. @default asyncScheduler */
  readonly scheduler?: SchedulerLike;
}

/** One attempt's outcome, for the `backoffice_unreachable` condition of the channel to `peer`. */
export type BackofficeReport =
  | { readonly peer: string; readonly ok: true; readonly id: string }
  | {
      readonly peer: string;
      readonly ok: false;
      readonly id: string;
      /** Attempts of this request so far, this one included. */
      readonly attempts: number;
      readonly error: string;
      /** When this request is asked again; absent when it is not (`check_recipient_signature`). */
      readonly retryInMs?: number;
    };

export interface BackofficeClient {
  /**
   * The back office's answer to `request`, checked by `parse`. With `retry`, asked again after
   * each failure until an answer; without, a failure throws `BUSINESS_BACKOFFICE_UNREACHABLE`.
   * Never settles after `close`.
   */
  ask<T>(request: BackofficeRequest, parse: (answer: unknown) => T, retry: boolean): Promise<T>;
  readonly reports$: Observable<BackofficeReport>;
  close(): void;
}

export function createBackofficeClient(options: WebhookBusinessOptions): BackofficeClient {
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const windowMs = options.replayWindowMs ?? 300_000;
  const scheduler = options.scheduler ?? asyncScheduler;
  const reports = new Subject<BackofficeReport>();
  const timers = new Set<Subscription>();
  const inflight = new Set<AbortController>();
  /** id → the same question being asked now (a recovery and a live reaction share it). */
  const asking = new Map<string, Promise<unknown>>();
  let closed = false;

  function report(r: BackofficeReport): void {
    if (!closed) reports.next(r);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sub = scheduler.schedule(() => {
        timers.delete(sub);
        resolve();
      }, ms);
      timers.add(sub);
    });
  }

  /** One POST: the parsed, verified answer body, or a thrown reason. */
  async function post(body: string, id: string): Promise<unknown> {
    const controller = new AbortController();
    inflight.add(controller);
    const timeout = scheduler.schedule(() => controller.abort(), timeoutMs);
    timers.add(timeout);
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(options.key, body, scheduler.now()),
          [IDEMPOTENCY_HEADER]: id,
        },
        body,
        signal: controller.signal,
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`the back office answered HTTP ${res.status}`);
      const problem = signatureProblem(
        [options.key],
        res.headers.get(SIGNATURE_HEADER) ?? undefined,
        text,
        scheduler.now(),
        windowMs,
      );
      if (problem !== undefined) throw new Error(`the back office's answer is not signed: ${problem}`);
      return JSON.parse(text) as unknown;
    } catch (err) {
      if (controller.signal.aborted) throw new Error(`no answer within ${timeoutMs} ms`);
      throw err;
    } finally {
      timeout.unsubscribe();
      timers.delete(timeout);
      inflight.delete(controller);
    }
  }

  /** Asks until a valid answer (`retry`), or once. Never settles after `close`. */
  async function askLoop<T>(
    request: BackofficeRequest,
    parse: (answer: unknown) => T,
    retry: boolean,
  ): Promise<T> {
    const body = JSON.stringify(request);
    for (let attempt = 1; ; attempt++) {
      if (closed) return new Promise<T>(() => undefined);
      try {
        const answer = parse(await post(body, request.id));
        report({ peer: request.other, ok: true, id: request.id });
        return answer;
      } catch (err) {
        const error = messageOf(err);
        if (!retry) {
          report({ peer: request.other, ok: false, id: request.id, attempts: attempt, error });
          throw new ParleyError('BUSINESS_BACKOFFICE_UNREACHABLE', error, { cause: err });
        }
        const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempt - 1, 30));
        report({
          peer: request.other,
          ok: false,
          id: request.id,
          attempts: attempt,
          error,
          retryInMs: delay,
        });
        await sleep(delay);
      }
    }
  }

  function shared<T>(request: BackofficeRequest, parse: (a: unknown) => T, retry: boolean): Promise<T> {
    const running = asking.get(request.id);
    if (running !== undefined) return running as Promise<T>;
    const p = askLoop(request, parse, retry).finally(() => asking.delete(request.id));
    asking.set(request.id, p);
    return p;
  }

  return {
    ask: shared,
    reports$: reports.asObservable(),
    close() {
      if (closed) return;
      closed = true;
      for (const t of timers) t.unsubscribe();
      timers.clear();
      for (const c of inflight) c.abort();
      reports.complete();
    },
  };
}

function messageOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
