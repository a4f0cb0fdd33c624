/**
 * `POST /admin/restore` (JSON `{ peer }`, `parley resync --all <peer>`): reconciles the closed
 * objects with a peer. This node leads the restore itself (PROTOCOL.md §7.6): the closed objects
 * of both sides are compared page by page, and whatever one side lacks is pushed or fetched,
 * verified. Answered `202 { peer, restore }` once the restore's cursor is durable; it runs in the
 * background (and resumes after a restart), its progress in `GET /admin/status`, the events and
 * the metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isParleyError } from '../errors.js';
import { sendJson } from '../http/router.js';
import type { VaspNode } from '../node.js';
import { addressProblem, safeChannelAddress } from './address-text.js';
import { jsonBody, sendError } from './http-body.js';
import { sendRefusal } from './refusal.js';

export async function restoreClosed(
  node: Partial<Pick<VaspNode, 'sync'>>,
  log: (entry: { event: 'restore_requested'; peer: string }) => void,
  maxBodyBytes: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<true> {
  const body = await jsonBody(req, res, maxBodyBytes);
  if (body === true) return true;
  const { peer, ...rest } = (body.value ?? {}) as { peer?: unknown };
  const address = typeof peer === 'string' ? safeChannelAddress(peer) : undefined;
  if (address === undefined || Object.keys(rest).length > 0) {
    const problem =
      typeof peer === 'string' && address === undefined
        ? `peer ${addressProblem(peer)}`
        : 'expected { peer: <address> } and nothing else';
    return sendError(res, 400, 'BUSINESS_INVALID_INPUT', problem);
  }
  if (node.sync === undefined) {
    return sendError(res, 501, 'SYNC_RESTORE_UNSUPPORTED', 'this node has no resync');
  }
  let sync: ReturnType<VaspNode['sync']>;
  try {
    sync = node.sync(address);
  } catch (err) {
    if (isParleyError(err, 'CONFIG_INVALID')) return sendError(res, 404, err.code, err.message);
    throw err;
  }
  try {
    const restore = await sync.startRestore('on_demand');
    log({ event: 'restore_requested', peer: address });
    return sendJson(res, 202, { peer: address, restore });
  } catch (err) {
    if (isParleyError(err, 'SYNC_RESTORE_UNSUPPORTED')) return sendError(res, 501, err.code, err.message);
    return sendRefusal(res, err);
  }
}
