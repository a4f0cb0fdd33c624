/**
 * The payments view of the admin API:
 *
 * - `GET /admin/payments` → `200 PaymentList`: payments, last changed first, filtered by `peer`,
 *   `state` (`open` / `closed`), `status` (either side), `myStatus`, `theirStatus`, `since` /
 *   `until` (last change, ISO 8601 or ms since the epoch), at most `limit` (default 50, up to
 *   500) per page, the next page from `cursor`;
 * - `GET /admin/payments/<referenceId>[?peer=…]` → `200 PaymentDetail`: its current object and
 *   its whole signed history (every request and response JWS as they crossed the wire).
 */
import type { ServerResponse } from 'node:http';
import { isParleyError } from '../errors.js';
import { enumParam, intParam, readQuery, stringParam } from '../http/query.js';
import { sendJson } from '../http/router.js';
import { channelAddress } from '../protocol/index.js';
import { createPaymentsQuery } from '../store/payments-query.js';
import type { ParleyStore } from '../store/types.js';
import { addressProblem, safeChannelAddress } from './address-text.js';
import type { PaymentCursor, PaymentHeadRow, PaymentsReader } from './ports.js';
import { RETRY_AFTER_SECONDS, refusalStatus } from './refusal.js';
import { PaymentStatus, type PaymentSummary } from './schemas.js';

type Summary = import('zod').infer<typeof PaymentSummary>;
type Status = import('zod').infer<typeof PaymentStatus>;

/** Rows read at most for one page when a status filter drops rows (the page then ends early). */
const MAX_SCAN = 5_000;
const DEFAULT_LIMIT = 50;

function parseTime(value: string): number | undefined {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const timeParam = stringParam((v) =>
  parseTime(v) === undefined ? 'expected an ISO 8601 time or milliseconds since the epoch' : undefined,
);

function encodeCursor(c: PaymentCursor): string {
  return Buffer.from(JSON.stringify([c.updatedAtMs, c.peer, c.referenceId])).toString('base64url');
}

function decodeCursor(text: string): PaymentCursor | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      Number.isSafeInteger(v[0]) &&
      typeof v[1] === 'string' &&
      typeof v[2] === 'string'
    ) {
      return { updatedAtMs: v[0] as number, peer: v[1], referenceId: v[2] };
    }
  } catch {
    // Not a cursor this node made.
  }
  return undefined;
}

const statusParam = enumParam(PaymentStatus.options);

export const PAYMENTS_QUERY = {
  peer: stringParam((v) => addressProblem(v)),
  state: enumParam(['open', 'closed']),
  status: statusParam,
  myStatus: statusParam,
  theirStatus: statusParam,
  since: timeParam,
  until: timeParam,
  limit: intParam(1, 500),
  cursor: stringParam((v) =>
    decodeCursor(v) === undefined ? 'not a cursor of this API (give nextCursor back as it came)' : undefined,
  ),
};

export const PAYMENT_QUERY = { peer: PAYMENTS_QUERY.peer };

interface ActorLike {
  address?: unknown;
  status?: { status?: unknown };
}

function statusOf(actor: ActorLike | undefined): Status {
  const parsed = PaymentStatus.safeParse(actor?.status?.status);
  return parsed.success ? parsed.data : 'none';
}

/** A head row as the API shows it, read from the payment object from my side (`me`). */
export function summarize(
  row: PaymentHeadRow,
  me: string,
): { summary: Summary; payment: Record<string, unknown> } {
  const payment = JSON.parse(row.payment) as Record<string, unknown>;
  const sender = payment['sender'] as ActorLike | undefined;
  const receiver = payment['receiver'] as ActorLike | undefined;
  const action = payment['action'] as { amount?: unknown; currency?: unknown } | undefined;
  const account = (a: ActorLike | undefined): string | undefined =>
    typeof a?.address === 'string' ? safeChannelAddress(a.address) : undefined;
  const myRole = account(sender) === me ? 'sender' : account(receiver) === me ? 'receiver' : null;
  const senderStatus = statusOf(sender);
  const receiverStatus = statusOf(receiver);
  const summary: Summary = {
    peer: row.peer,
    referenceId: row.referenceId,
    version: row.version,
    versionCount: row.versionCount,
    open: row.open,
    updatedAt: new Date(row.updatedAtMs).toISOString(),
    myRole,
    myStatus: myRole === null ? null : myRole === 'sender' ? senderStatus : receiverStatus,
    theirStatus: myRole === null ? null : myRole === 'sender' ? receiverStatus : senderStatus,
    senderStatus,
    receiverStatus,
    amount: typeof action?.amount === 'number' ? action.amount : null,
    currency: typeof action?.currency === 'string' ? action.currency : null,
  };
  return { summary, payment };
}

/** An answer of the payments view: the HTTP status and JSON body the admin routes send. */
export interface PaymentsAnswer {
  status: number;
  body: unknown;
  /** A 503: the client may retry after `RETRY_AFTER_SECONDS`. */
  retryAfter?: true;
}

function queryProblems(problems: readonly string[]): PaymentsAnswer {
  return { status: 400, body: { error: 'HTTP_INVALID_QUERY', message: problems.join('; '), problems } };
}

function refusal(err: unknown): PaymentsAnswer {
  const code = isParleyError(err) ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const status = refusalStatus(code);
  return { status, body: { error: code, message }, ...(status === 503 ? { retryAfter: true as const } : {}) };
}

/** Sends an answer as the admin routes do. */
export function sendPaymentsAnswer(res: ServerResponse, answer: PaymentsAnswer): true {
  if (answer.retryAfter) res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  return sendJson(res, answer.status, answer.body);
}

/**
 * A page of payments (`GET /admin/payments`, and the dashboard's payments view): the same
 * query parameters, the same answers.
 */
export async function pagePayments(payments: PaymentsReader, me: string, url: URL): Promise<PaymentsAnswer> {
  const query = readQuery(url, PAYMENTS_QUERY);
  if (!query.ok) return queryProblems(query.problems);
  const q = query.values;
  const sinceMs = q.since === undefined ? undefined : parseTime(q.since);
  const untilMs = q.until === undefined ? undefined : parseTime(q.until);
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) {
    return queryProblems(['since: must be before until']);
  }
  const limit = q.limit ?? DEFAULT_LIMIT;
  const keep = (s: Summary): boolean =>
    (q.status === undefined || s.senderStatus === q.status || s.receiverStatus === q.status) &&
    (q.myStatus === undefined || s.myStatus === q.myStatus) &&
    (q.theirStatus === undefined || s.theirStatus === q.theirStatus);
  const base = {
    ...(q.peer !== undefined ? { peer: channelAddress(q.peer) } : {}),
    ...(q.state !== undefined ? { open: q.state === 'open' } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(untilMs !== undefined ? { untilMs } : {}),
  };
  let after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const out: Summary[] = [];
  let scanned = 0;
  const page = (next?: PaymentCursor): PaymentsAnswer => ({
    status: 200,
    body: next ? { payments: out, nextCursor: encodeCursor(next) } : { payments: out },
  });
  try {
    for (;;) {
      const batch = limit + 1;
      const rows = await payments.heads({ ...base, ...(after ? { after } : {}), limit: batch });
      for (const row of rows) {
        // A full page, and another row after it: the next page starts after the last one taken.
        if (out.length === limit) return page(after!);
        after = { updatedAtMs: row.updatedAtMs, peer: row.peer, referenceId: row.referenceId };
        scanned += 1;
        const { summary } = summarize(row, me);
        if (keep(summary)) out.push(summary);
      }
      if (rows.length < batch) return page();
      if (scanned >= MAX_SCAN) return page(after!);
    }
  } catch (err) {
    return refusal(err);
  }
}

/** `GET /admin/payments`. */
export async function listPayments(
  payments: PaymentsReader,
  me: string,
  res: ServerResponse,
  url: URL,
): Promise<true> {
  return sendPaymentsAnswer(res, await pagePayments(payments, me, url));
}

/**
 * One payment with its object and whole signed history (`GET /admin/payments/<referenceId>`,
 * and the dashboard's payment detail).
 */
export async function readPayment(
  payments: PaymentsReader,
  me: string,
  referenceId: string,
  url: URL,
): Promise<PaymentsAnswer> {
  const query = readQuery(url, PAYMENT_QUERY);
  if (!query.ok) return queryProblems(query.problems);
  const peer = query.values.peer === undefined ? undefined : channelAddress(query.values.peer);
  try {
    const heads = await payments.find(referenceId, peer);
    if (heads.length === 0) {
      const message = `no payment ${referenceId}${peer ? ` with ${peer}` : ''}`;
      return { status: 404, body: { error: 'PAYMENT_UNKNOWN', message } };
    }
    if (heads.length > 1) {
      const peers = heads.map((h) => h.peer).join(', ');
      return queryProblems([
        `peer: required: ${referenceId} names a payment on ${heads.length} channels (${peers})`,
      ]);
    }
    const head = heads[0]!;
    const [history, pending] = await Promise.all([
      payments.history(head.peer, head.referenceId),
      payments.pending(head.peer, head.referenceId),
    ]);
    const { summary, payment } = summarize(head, me);
    const body = {
      summary,
      payment,
      history: history.map(({ createdAtMs, ...c }) => ({ ...c, at: new Date(createdAtMs).toISOString() })),
      pending: pending.map(({ createdAtMs, ...c }) => ({
        ...c,
        queuedAt: new Date(createdAtMs).toISOString(),
      })),
    };
    return { status: 200, body };
  } catch (err) {
    return refusal(err);
  }
}

/** `GET /admin/payments/<referenceId>`. */
export async function showPayment(
  payments: PaymentsReader,
  me: string,
  referenceId: string,
  res: ServerResponse,
  url: URL,
): Promise<true> {
  return sendPaymentsAnswer(res, await readPayment(payments, me, referenceId, url));
}

/**
 * The payments view over a store's reader, for the dashboard: `list` takes the query of
 * `GET /admin/payments`, `show` the reference id and the query of `GET /admin/payments/<ref>`.
 */
export function createPaymentsView(
  payments: PaymentsReader,
  me: string,
): {
  list(query: URLSearchParams): Promise<PaymentsAnswer>;
  show(referenceId: string, query: URLSearchParams): Promise<PaymentsAnswer>;
} {
  const url = (query: URLSearchParams): URL => new URL(`http://localhost/admin/payments?${query}`);
  return {
    list: (query) => pagePayments(payments, me, url(query)),
    show: (referenceId, query) => readPayment(payments, me, referenceId, url(query)),
  };
}

/** The payments view over a node's store, or undefined when the store was not made by `openStore`. */
export function storePaymentsView(
  store: ParleyStore,
  me: string,
): ReturnType<typeof createPaymentsView> | undefined {
  try {
    return createPaymentsView(createPaymentsQuery(store), me);
  } catch (err) {
    if (isParleyError(err, 'STORE_INVALID_INPUT')) return undefined;
    throw err;
  }
}
