/**
 * `POST /admin/commands/<cid>/abandon`: ends a command of mine locally (`parley command
 * abandon`, docs/operations.md "Peer behind"). Same guard as the other admin routes (clients
 * on this machine, and the run's token when set).
 *
 * - `200 { peer, cid, referenceId, atMs, outcome: "COMMAND_ABANDONED" }` once the abandonment
 *   is durable (outbox row gone, `command_abandoned` in the health history);
 * - `404 COMMAND_UNKNOWN`: no command of this node has that cid;
 * - `409 COMMAND_ALREADY_FINAL`: it has its final outcome, or was abandoned before;
 * - `503 STORE_LEASE_LOST` / `STORE_UNAVAILABLE` with `Retry-After`: try again (or another replica).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, isParleyError } from '../errors.js';
import type { AbandonedCommand } from '../health/abandon.js';
import { type HttpRouter, hasBearerToken, sendJson } from '../http/router.js';

/** Path prefix of the command routes. */
const COMMANDS_PREFIX = '/admin/commands/';

/** What the route uses of a node. */
export interface AbandonNode {
  readonly http: HttpRouter;
  abandonCommand(cid: string): Promise<AbandonedCommand>;
}

export interface AbandonRouteOptions {
  isTrusted: (req: IncomingMessage) => boolean;
  token?: string;
  log?: (entry: { event: 'command_abandoned'; peer: string; cid: string; referenceId: string }) => void;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  COMMAND_UNKNOWN: 404,
  COMMAND_ALREADY_FINAL: 409,
  STORE_LEASE_LOST: 503,
  STORE_UNAVAILABLE: 503,
  STORE_CLOSED: 503,
};

/** A cid as the channel makes them (or a peer's): printable ASCII, bounded. */
const CID_RE = /^[\x21-\x7e]{1,128}$/;

export function registerAbandonRoute(node: AbandonNode, options: AbandonRouteOptions): void {
  node.http.route(COMMANDS_PREFIX, async (req, res, url) => {
    const match = /^\/admin\/commands\/([^/]+)\/abandon$/.exec(url.pathname);
    if (!match) return false;
    req.resume();
    if (!options.isTrusted(req)) {
      return sendJson(res, 403, { message: 'admin routes answer clients on this machine only' });
    }
    if (options.token !== undefined && !hasBearerToken(req, options.token)) {
      return sendJson(res, 401, {
        error: 'ADMIN_UNAUTHORIZED',
        message: 'the admin token is missing or wrong',
      });
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return sendJson(res, 405, { message: 'use POST' });
    }
    let cid: string;
    try {
      cid = decodeURIComponent(match[1]!);
    } catch {
      cid = '';
    }
    if (!CID_RE.test(cid)) {
      return sendJson(res, 400, { error: 'BUSINESS_INVALID_INPUT', message: 'not a cid' });
    }
    return abandon(res, node, cid, options);
  });
}

async function abandon(
  res: ServerResponse,
  node: AbandonNode,
  cid: string,
  options: AbandonRouteOptions,
): Promise<true> {
  try {
    const done = await node.abandonCommand(cid);
    options.log?.({ event: 'command_abandoned', peer: done.peer, cid, referenceId: done.referenceId });
    return sendJson(res, 200, { ...done, outcome: 'COMMAND_ABANDONED' });
  } catch (err) {
    if (!isParleyError(err)) throw err;
    const status = STATUS[err.code] ?? 500;
    if (status === 503) res.setHeader('Retry-After', '1');
    return sendJson(res, status, { error: err.code, message: err.message });
  }
}
