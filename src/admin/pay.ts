/**
 * `POST /admin/pay` (JSON {@link AdminPayRequest}) → `202 { referenceId, cid, peer }` once the
 * create is durable in the outbox (never before), or with `?wait=1` `200 { referenceId, outcome:
 * { cid, status, code } }` once the create has its final response. `peer` says whether the
 * channel to the payee is connected and healthy now (the create waits for it otherwise).
 *
 * With `?wait=1`, a create that is durable but has no final response yet answers `202 {
 * referenceId, cid, durable: true, error, message }`: `PAY_WAIT_TIMEOUT` after `timeoutMs`
 * (default 30 s), `CHANNEL_CLOSED` / `STORE_LEASE_LOST` when its channel stopped being served
 * here. A create that could not be stored is refused (`refusal.ts`): `503` + `Retry-After` for
 * store and lease failures, `409` for conflicts, `400` for bad input.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstValueFrom, timeout } from 'rxjs';
import { isParleyError } from '../errors.js';
import { enumParam, intParam, readQuery, sendQueryProblems } from '../http/query.js';
import { sendJson } from '../http/router.js';
import { channelAddress } from '../protocol/index.js';
import { jsonBody, sendError } from './http-body.js';
import { AdminPayRequest, requestIssues } from './pay-request.js';
import { sendRefusal } from './refusal.js';
import type { AdminLogEntry, AdminNode } from './routes.js';

/** How long `?wait=1` waits for the create's final response by default. */
export const DEFAULT_PAY_WAIT_MS = 30_000;

/** The query of `POST /admin/pay` (`?wait`, `?wait=1`, `?wait=true`; `0` / `false` do not wait). */
export const PAY_QUERY = {
  wait: enumParam(['', '1', 'true', '0', 'false']),
  timeoutMs: intParam(1, 3_600_000),
};

export interface PayRouteDeps {
  node: AdminNode;
  log: (entry: AdminLogEntry) => void;
  maxBodyBytes: number;
  /** Call right after an acknowledgement (a 2xx for an accepted operation) is written. */
  acknowledged: (answered: true) => true;
}

/** The body of `POST /admin/pay`, checked; or `true` once a refusal is answered. */
async function readPayRequest(
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<AdminPayRequest | true> {
  const body = await jsonBody(req, res, maxBodyBytes);
  if (body === true) return true;
  const parsed = AdminPayRequest.safeParse(body.value);
  if (!parsed.success) {
    const issues = requestIssues(parsed.error);
    const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return sendError(res, 400, 'BUSINESS_INVALID_INPUT', summary, issues);
  }
  return parsed.data;
}

/** The payee's channel now: connected or not, and its heartbeat health when known. */
function peerState(node: AdminNode, peer: string): { state: 'connected' | 'disconnected'; health?: string } {
  const channel = node.channels.find((c) => c.peer === peer);
  const health = node.health?.snapshot().find((h) => h.peer === peer)?.state;
  return {
    state: channel?.connection !== undefined ? 'connected' : 'disconnected',
    ...(health !== undefined ? { health } : {}),
  };
}

/** `POST /admin/pay`. */
export async function pay(
  deps: PayRouteDeps,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<true> {
  const { node, log, acknowledged } = deps;
  const query = readQuery(url, PAY_QUERY);
  if (!query.ok) {
    req.resume();
    return sendQueryProblems(res, query.problems);
  }
  const wait = query.values.wait !== undefined && query.values.wait !== '0' && query.values.wait !== 'false';
  const input = await readPayRequest(req, res, deps.maxBodyBytes);
  if (input === true) return true;
  const to = channelAddress(input.to);
  if (to === node.address) return sendError(res, 400, 'BUSINESS_INVALID_INPUT', 'cannot pay this node');
  const channel = node.channels.find((c) => c.peer === to);
  if (!channel) {
    return sendError(res, 400, 'BUSINESS_INVALID_INPUT', `${to} is not a configured peer`);
  }
  if (channel.suspended) {
    // Several replicas: a load balancer (or the caller) tries another replica.
    res.setHeader('Retry-After', '1');
    return sendError(
      res,
      503,
      'STORE_LEASE_LOST',
      `another replica of this VASP serves the channel to ${to} now`,
    );
  }

  let started: ReturnType<AdminNode['pay']>;
  try {
    started = node.pay(input);
  } catch (err) {
    // The payment builder refuses before anything is sequenced or stored.
    if (isParleyError(err)) return sendError(res, 400, err.code, err.message);
    throw err;
  }
  const { referenceId, queued, outcome$ } = started;
  log({ event: 'pay_requested', referenceId, to, amount: input.amount, currency: input.currency });
  const failed = (err: unknown): void =>
    log({
      event: 'pay_failed',
      referenceId,
      code: isParleyError(err) ? err.code : 'INTERNAL',
      message: err instanceof Error ? err.message : String(err),
    });

  // Acknowledged means durable: nothing is answered 2xx before the create is in the outbox.
  let cid: string;
  try {
    ({ cid } = await queued);
  } catch (err) {
    // Not stored: refused with its code (503 + Retry-After for a store or lease failure).
    failed(err);
    return sendRefusal(res, err, { referenceId });
  }
  log({ event: 'pay_queued', referenceId, cid });
  if (!wait) {
    outcome$.subscribe({ error: failed });
    return acknowledged(sendJson(res, 202, { referenceId, cid, peer: peerState(node, to) }));
  }
  const waitMs = query.values.timeoutMs ?? DEFAULT_PAY_WAIT_MS;
  try {
    const outcome = await firstValueFrom(outcome$.pipe(timeout({ first: waitMs })));
    return acknowledged(
      sendJson(res, 200, {
        referenceId,
        outcome: { cid: outcome.cid, status: outcome.status, code: outcome.code },
      }),
    );
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    if (timedOut || isParleyError(err, 'CHANNEL_CLOSED') || isParleyError(err, 'STORE_LEASE_LOST')) {
      // Stored, with no final response yet: the payment is accepted (durable; it completes when
      // the peer answers) and its outcome is not known here. A retry would start a second
      // payment, so this is a 202.
      if (timedOut) outcome$.subscribe({ error: failed });
      else failed(err);
      const peer = peerState(node, to);
      const [error, message] = timedOut
        ? [
            'PAY_WAIT_TIMEOUT',
            `no final response within ${waitMs} ms (the channel to ${to} is ${peer.state}${peer.health ? `, ${peer.health}` : ''}); the create stays in the outbox and is sent until the peer answers`,
          ]
        : [(err as { code: string }).code, (err as Error).message];
      return acknowledged(sendJson(res, 202, { referenceId, cid, durable: true, error, message, peer }));
    }
    failed(err);
    // Stored, then ended without a final response (its branch lost a fork, or it was abandoned).
    return sendRefusal(res, err, { referenceId, cid });
  }
}
