/**
 * How an admin route answers an operation it could not accept: the HTTP status for each error
 * code, so a client (or a load balancer) knows whether to fix the request, look at a conflict,
 * or simply retry. Nothing refused here was acknowledged or stored.
 */
import type { ServerResponse } from 'node:http';
import { type ErrorCode, isParleyError } from '../errors.js';
import { sendJson } from '../http/router.js';

/** Seconds a client waits before retrying a `503` (store or lease failure, node closing). */
export const RETRY_AFTER_SECONDS = 1;

/** Codes that mean the request itself is wrong: `400`. */
const INPUT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'BUSINESS_INVALID_INPUT',
  'CHANNEL_INVALID_COMMAND',
  'STORE_INVALID_INPUT',
  'ADDRESS_INVALID',
  'CONFIG_INVALID',
]);

/** Codes that mean the request conflicts with what the node holds: `409`. */
const CONFLICT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CHANNEL_DEPENDENCY_UNAVAILABLE',
  'PROTOCOL_CID_CONFLICT',
  'STORE_DUPLICATE_COMMAND',
  'STORE_VERSION_CONFLICT',
  // A stored command that resync dropped: the peer's branch of the object won a fork.
  'SYNC_FORK_LOST',
  // A stored command the operator abandoned (`parley command abandon`): final, never resent.
  'COMMAND_ABANDONED',
]);

/**
 * The HTTP status for a refusal with `code`: `400` bad input, `409` conflict, `503` (with
 * `Retry-After`) for a store or lease failure or a channel that is closing (the same request
 * may succeed on retry, here or at another replica), `500` otherwise.
 */
export function refusalStatus(code: string): 400 | 409 | 503 | 500 {
  if (INPUT_CODES.has(code as ErrorCode)) return 400;
  if (CONFLICT_CODES.has(code as ErrorCode)) return 409;
  if (code.startsWith('STORE_') || code === 'CHANNEL_CLOSED' || code.startsWith('TRANSPORT_')) return 503;
  return 500;
}

/**
 * Answers a refused operation: `{ error, message, ...extra }` with {@link refusalStatus}, and
 * `Retry-After` on a 503. An error that is not a ParleyError answers `500 INTERNAL`.
 */
export function sendRefusal(res: ServerResponse, err: unknown, extra: Record<string, unknown> = {}): true {
  const code = isParleyError(err) ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const status = refusalStatus(code);
  if (status === 503) res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
  // Another replica owns the channel (this one learnt it from the store's fence): answered as a
  // standby answers, naming nothing that was not stored.
  if (code === 'STORE_LEASE_LOST') return sendJson(res, status, { error: code, message });
  return sendJson(res, status, { ...extra, error: code, message });
}
