/**
 * `POST /admin/commands/<cid>/abandon`: ends a command of mine locally (`parley command
 * abandon`, docs/operations.md "Peer behind"). Same guard as the other admin routes.
 *
 * - `200 { peer, cid, referenceId, atMs, outcome: "COMMAND_ABANDONED" }` once the abandonment
 *   is durable (outbox row gone, `command_abandoned` in the health history);
 * - `404 COMMAND_UNKNOWN`: no command of this node has that cid;
 * - `409 COMMAND_ALREADY_FINAL`: it has its final outcome, or was abandoned before;
 * - `503 STORE_LEASE_LOST` / `STORE_UNAVAILABLE` with `Retry-After`: try again (or another replica).
 */
import type { ServerResponse } from 'node:http';
import { type ErrorCode, isParleyError } from '../errors.js';
import type { AbandonedCommand } from '../health/abandon.js';
import { sendJson } from '../http/router.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  COMMAND_UNKNOWN: 404,
  COMMAND_ALREADY_FINAL: 409,
  STORE_LEASE_LOST: 503,
  STORE_UNAVAILABLE: 503,
  STORE_CLOSED: 503,
};

/** A cid as the channel makes them (or a peer's): printable ASCII, bounded. */
const CID_RE = /^[\x21-\x7e]{1,128}$/;

/** Abandons `cid` and answers. */
export async function abandon(
  res: ServerResponse,
  abandonCommand: (cid: string) => Promise<AbandonedCommand>,
  cid: string,
  log?: (entry: { event: 'command_abandoned'; peer: string; cid: string; referenceId: string }) => void,
): Promise<true> {
  if (!CID_RE.test(cid)) {
    return sendJson(res, 400, { error: 'BUSINESS_INVALID_INPUT', message: 'not a cid' });
  }
  try {
    const done = await abandonCommand(cid);
    log?.({ event: 'command_abandoned', peer: done.peer, cid, referenceId: done.referenceId });
    return sendJson(res, 200, { ...done, outcome: 'COMMAND_ABANDONED' });
  } catch (err) {
    if (!isParleyError(err)) throw err;
    const status = STATUS[err.code] ?? 500;
    if (status === 503) res.setHeader('Retry-After', '1');
    return sendJson(res, status, { error: err.code, message: err.message });
  }
}
