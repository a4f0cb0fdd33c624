/**
 * The dashboard's payments view: a page of payments with filters, and one payment with its
 * object, the status on each side and its whole signed history. Asked over the page's socket
 * (`payments` / `payment`, answered by acknowledgement); answered by the same functions as
 * `GET /admin/payments` and `GET /admin/payments/<ref>`, so the page and the admin API agree.
 * Reads only: the dashboard stays read-only.
 */
import type { Socket } from 'socket.io';
import {
  type ClientToServerEvents,
  PaymentRequest,
  type PaymentsAnswer,
  PaymentsQuery,
  type ServerToClientEvents,
} from './events.js';

/** The payments view of a node (the admin API's, over the node's store). */
export interface DashboardPayments {
  /** A page, for the query parameters of `GET /admin/payments`. */
  list(query: URLSearchParams): Promise<PaymentsAnswer>;
  /** One payment, for the query parameters of `GET /admin/payments/<ref>`. */
  show(referenceId: string, query: URLSearchParams): Promise<PaymentsAnswer>;
}

type DashboardSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

function invalid(issues: readonly { path: PropertyKey[]; message: string }[]): PaymentsAnswer {
  const problems = issues.map((i) => `${i.path.map(String).join('.') || 'request'}: ${i.message}`);
  return { status: 400, body: { error: 'HTTP_INVALID_QUERY', message: problems.join('; '), problems } };
}

const UNAVAILABLE: PaymentsAnswer = {
  status: 501,
  body: {
    error: 'STORE_INVALID_INPUT',
    message: 'this node has no payments view (its store was not made by openStore)',
  },
};

function params(values: Record<string, string | undefined>): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== '') out.set(k, v);
  return out;
}

/** Answers a client's `payments` and `payment` requests (nothing else it sends is read). */
export function servePayments(socket: DashboardSocket, payments: DashboardPayments | undefined): void {
  const answer = (ack: unknown, work: () => Promise<PaymentsAnswer>): void => {
    if (typeof ack !== 'function') return;
    void work()
      .catch(() => ({
        status: 500,
        // No error text to the browser (as the admin router): the store's words stay here.
        body: { error: 'INTERNAL', message: 'the payments could not be read' },
      }))
      .then((a) => (ack as (a: PaymentsAnswer) => void)(a));
  };
  socket.on('payments', (query: unknown, ack: unknown) => {
    answer(ack, async () => {
      const parsed = PaymentsQuery.safeParse(query ?? {});
      if (!parsed.success) return invalid(parsed.error.issues);
      return payments ? payments.list(params(parsed.data)) : UNAVAILABLE;
    });
  });
  socket.on('payment', (request: unknown, ack: unknown) => {
    answer(ack, async () => {
      const parsed = PaymentRequest.safeParse(request);
      if (!parsed.success) return invalid(parsed.error.issues);
      const { referenceId, peer } = parsed.data;
      return payments ? payments.show(referenceId, params({ peer })) : UNAVAILABLE;
    });
  });
}
