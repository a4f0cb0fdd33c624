/**
 * The node's admin HTTP routes, on the channel port (docs/api.md; the OpenAPI document at
 * `GET /admin/openapi.json`). The table of routes is `operations.ts`:
 *
 * - `GET /admin/status` → `{ address, epoch, url, store?, channels }` (each channel's connection,
 *   heartbeat health, in-flight commands, open payments, peer epoch, `peer_behind`)
 * - `POST /admin/pay` (`pay.ts`) → starts a payment, answered once its create is durable
 * - `GET /admin/payments`, `GET /admin/payments/<referenceId>` (`payments.ts`)
 * - `POST /admin/commands/<cid>/abandon` (`abandon.ts`) → ends a stuck command of mine
 * - `POST /admin/peer-epoch` (JSON `{ peer, epoch }`) → `200 { peer, epoch, previousEpoch, changed }`
 *   once the peer's superseded `epoch` is its current one again (`parley peer reset-epoch`,
 *   docs/security.md "Peer epoch reset"); `400 HEALTH_EPOCH_UNKNOWN` when it is not one.
 * - `POST /admin/restore` (JSON `{ peer }`, `restore.ts`) → reconciles the closed objects with a
 *   peer (`parley resync --all`), answered `202` once the restore's cursor is durable
 * - `GET|POST /admin/api-keys`, `POST /admin/api-keys/<id>/revoke` (`api-keys.ts`)
 * - `GET /admin/openapi.json`
 * - `GET /admin/events`: the back-office events as Server-Sent Events (`events-stream.ts`)
 *
 * Errors are `{ error: ErrorCode, message, … }`. A refused request changes nothing.
 * docs/acknowledgements.md lists when each answer is given.
 *
 * Who is answered: clients on this machine (403 `ADMIN_FORBIDDEN` otherwise) with, when the
 * routes have a token (`parley start` makes one per run and writes it to the 0600 runtime file),
 * `Authorization: Bearer <token>` (401 `ADMIN_UNAUTHORIZED` otherwise): behind a reverse proxy on
 * the same machine every request comes from loopback, with whatever Host the proxy sets. And
 * clients anywhere with `Authorization: Bearer <API key>`, for the routes of the key's scopes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { isParleyError } from '../errors.js';
import { type HostOriginPolicy, isAllowedHostOrigin } from '../http/host-origin.js';
import { readQuery, sendQueryProblems } from '../http/query.js';
import { isLoopbackRequest, sendJson } from '../http/router.js';
import type { ChannelSnapshot, VaspNode } from '../node.js';
import { createApiKeyRepository } from '../store/api-key-repository.js';
import { createPaymentsQuery } from '../store/payments-query.js';
import { abandon } from './abandon.js';
import { ackFailpoint } from './ack-failpoint.js';
import { safeChannelAddress } from './address-text.js';
import { type ApiKeyEvent, createApiKey, listApiKeys, revokeApiKey } from './api-keys.js';
import { callerOf } from './caller.js';
import { streamEvents } from './events-stream.js';
import { jsonBody, methodNotAllowed, sendError } from './http-body.js';
import { adminOpenApi } from './openapi.js';
import { matchOperation, type OperationId } from './operations.js';
import { pay } from './pay.js';
import { listPayments, showPayment } from './payments.js';
import type { ApiKeyStore, PaymentsReader } from './ports.js';
import { sendRefusal } from './refusal.js';
import { restoreClosed } from './restore.js';
import type { RestoreStatus as RestoreStatusSchema } from './schemas.js';

/** The part of a channel's health snapshot (`src/health`) that the status shows. */
export interface AdminHealthSnapshot {
  peer: string;
  state: string;
  rttMs: number | null;
  phi: number;
}

/**
 * What the admin routes use of a node. The health monitor is typed by shape and optional, so
 * the routes do not depend on the health module (nodes without one show no health column).
 */
export type AdminNode = Pick<VaspNode, 'address' | 'epoch' | 'url' | 'http' | 'channels' | 'pay' | 'status'> &
  Partial<Pick<VaspNode, 'abandonCommand' | 'store' | 'backofficeEvents' | 'sync'>> & {
    readonly health?: {
      snapshot(): readonly AdminHealthSnapshot[];
      readonly peerBehind?: { snapshot(): readonly AdminPeerBehind[] };
      readonly backoffice?: { snapshot(): readonly AdminBackoffice[] };
      readonly eventsDelivery?: { snapshot(): readonly AdminEventsUndeliverable[] };
      resetEpoch?(
        peer: string,
        epoch: string,
      ): Promise<{ peer: string; epoch: string; previousEpoch: string | null; changed: boolean }>;
    };
    /** Whether the node's store can write (`src/health/store-writability.ts`). */
    readonly storeWritability?: { snapshot(): AdminStoreStatus };
  };

/** A channel whose peer is `peer_behind`: commands of mine stuck there (docs/operations.md). */
/** A channel whose payments wait for an unanswering back office (`backoffice_unreachable`). */
export interface AdminBackoffice {
  peer: string;
  sinceMs: number;
  requests: number;
  error: string;
}

/** The back-office events stopped moving (`events_undeliverable`). */
export interface AdminEventsUndeliverable {
  peer: string;
  eventId: string;
  sinceMs: number;
  failures: number;
  error: string;
}

export interface AdminPeerBehind {
  peer: string;
  sinceMs: number;
  commands: number;
  cids: string[];
}

/** The store's writability in `GET /admin/status`. */
export interface AdminStoreStatus {
  store: 'ok' | 'unwritable';
  code?: string;
  sinceMs?: number;
}

/** A channel in `GET /admin/status`. */
export interface AdminChannelStatus extends ChannelSnapshot {
  /**
   * Liveness from heartbeats (`unknown`, `healthy`, `suspect`, `down`), last RTT and phi. No RTT
   * while the channel is down or disconnected (the last one would be stale); phi null when it is
   * not finite.
   */
  health?: { state: string; rttMs: number | null; phi: number | null };
  /** Present while the peer is `peer_behind` (LIP-1 HTTP channels too). */
  peerBehind?: AdminPeerBehind;
  /** The channel's closed-object restore (PROTOCOL.md §7.6), once one ran or runs in this process. */
  restore?: z.infer<typeof RestoreStatusSchema>;
}

/** The answer of `GET /admin/status`. */
export interface AdminStatus {
  address: string;
  epoch: string;
  /** The channel endpoint peers dial. */
  url: string;
  /** Absent from nodes that do not probe their store. */
  store?: AdminStoreStatus;
  channels: AdminChannelStatus[];
  /** Present while payments wait for the back office (docs/backoffice.md). */
  backoffice?: AdminBackoffice[];
  /** Present while the back-office events stopped moving (docs/backoffice.md, "Events"). */
  eventsUndeliverable?: AdminEventsUndeliverable[];
}

/** What the admin routes report (the CLI writes these as JSON log lines). */
export type AdminLogEntry =
  | { event: 'pay_requested'; referenceId: string; to: string; amount: number; currency: string }
  /** The create is durable in the outbox: the payment is acknowledged now. */
  | { event: 'pay_queued'; referenceId: string; cid: string }
  | { event: 'pay_failed'; referenceId: string; code: string; message: string }
  | { event: 'command_abandoned'; peer: string; cid: string; referenceId: string }
  | { event: 'restore_requested'; peer: string }
  | { event: 'epoch_reset'; peer: string; epoch: string; previousEpoch: string | null }
  | ApiKeyEvent;

export interface AdminRoutesOptions extends HostOriginPolicy {
  /** Which clients may use the routes. @default {@link isAdminClient} with `allowedHosts` */
  isTrusted?: (req: IncomingMessage) => boolean;
  /** Receives admin actions, for the log. @default none */
  log?: (entry: AdminLogEntry) => void;
  /** Largest accepted request body. @default 65536 */
  maxBodyBytes?: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. @default none */
  token?: string;
  /**
   * Called right after each acknowledgement of `POST /admin/pay` is written. @default the
   * test-only failpoint of `PARLEY_TEST_KILL_AFTER_ACKS` when set (see `ack-failpoint.ts`), else none
   */
  afterAcknowledgement?: () => void;
  /** The payments view. @default over `node.store` (none without a store made by `openStore`) */
  payments?: PaymentsReader;
  /** The API keys. @default over `node.store` (none without a store made by `openStore`) */
  apiKeys?: ApiKeyStore;
  /** The version the OpenAPI document states. @default '0.0.0' */
  version?: string;
}

export { isLoopbackHostName } from '../http/host-origin.js';

/** Path prefix of every admin route. */
export const ADMIN_PREFIX = '/admin/';

/**
 * The default admin client check: the peer socket is on loopback, and the Host and Origin
 * headers pass the rules of every browser-reachable route (`src/http/host-origin.ts`). A web
 * page in the operator's browser can reach 127.0.0.1 too; it must not be able to start payments.
 */
export function isAdminClient(req: IncomingMessage, policy: HostOriginPolicy = {}): boolean {
  return isLoopbackRequest(req) && isAllowedHostOrigin(req, policy);
}

/** `POST /admin/peer-epoch`: accept a peer's superseded epoch again (`parley peer reset-epoch`). */
async function peerEpoch(
  node: AdminNode,
  log: (entry: AdminLogEntry) => void,
  maxBodyBytes: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<true> {
  const body = await jsonBody(req, res, maxBodyBytes);
  if (body === true) return true;
  const { peer, epoch } = (body.value ?? {}) as { peer?: unknown; epoch?: unknown };
  const address = typeof peer === 'string' ? safeChannelAddress(peer) : undefined;
  if (address === undefined || typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 128) {
    return sendError(
      res,
      400,
      'BUSINESS_INVALID_INPUT',
      'expected { peer: <address>, epoch: <1-128 chars> }',
    );
  }
  const reset = node.health?.resetEpoch;
  if (reset === undefined) return sendError(res, 501, 'HEALTH_EPOCH_UNKNOWN', 'this node keeps no epochs');
  try {
    const result = await reset.call(node.health, address, epoch);
    if (result.changed)
      log({ event: 'epoch_reset', peer: address, epoch, previousEpoch: result.previousEpoch });
    return sendJson(res, 200, result);
  } catch (err) {
    if (isParleyError(err, 'HEALTH_EPOCH_UNKNOWN')) return sendError(res, 400, err.code, err.message);
    throw err;
  }
}

/** A channel's health as the status shows it: no stale RTT for a channel that is down. */
function shownHealth(
  channel: ChannelSnapshot,
  h: AdminHealthSnapshot,
): { state: string; rttMs: number | null; phi: number | null } {
  const down = h.state === 'down' || channel.state !== 'connected';
  return { state: h.state, rttMs: down ? null : h.rttMs, phi: Number.isFinite(h.phi) ? h.phi : null };
}

/** The channel's restore, when the node has resync and one ran or runs. */
function restoreOf(node: AdminNode, peer: string): { restore?: z.infer<typeof RestoreStatusSchema> } {
  try {
    const restore = node.sync?.(peer).restoreStatus();
    return restore ? { restore } : {};
  } catch {
    return {};
  }
}

/** `GET /admin/status`. */
async function status(node: AdminNode, res: ServerResponse): Promise<true> {
  const health = new Map((node.health?.snapshot() ?? []).map((h) => [h.peer, h]));
  const behind = new Map((node.health?.peerBehind?.snapshot() ?? []).map((b) => [b.peer, b]));
  let snapshots: ChannelSnapshot[];
  try {
    snapshots = await node.status();
  } catch (err) {
    return sendRefusal(res, err);
  }
  const channels = snapshots.map((channel): AdminChannelStatus => {
    const h = health.get(channel.peer);
    const b = behind.get(channel.peer);
    return {
      ...channel,
      ...(h ? { health: shownHealth(channel, h) } : {}),
      ...(b ? { peerBehind: b } : {}),
      ...restoreOf(node, channel.peer),
    };
  });
  const store = node.storeWritability?.snapshot();
  const backoffice = node.health?.backoffice?.snapshot() ?? [];
  const undeliverable = node.health?.eventsDelivery?.snapshot() ?? [];
  const body: AdminStatus = {
    address: node.address,
    epoch: node.epoch,
    url: node.url,
    ...(store ? { store: { store: store.store, code: store.code, sinceMs: store.sinceMs } } : {}),
    channels,
    ...(backoffice.length > 0 ? { backoffice: [...backoffice] } : {}),
    ...(undeliverable.length > 0 ? { eventsUndeliverable: [...undeliverable] } : {}),
  };
  return sendJson(res, 200, body);
}

export interface Dispatch {
  node: AdminNode;
  options: AdminRoutesOptions;
  log: (entry: AdminLogEntry) => void;
  maxBodyBytes: number;
  acknowledged: (answered: true) => true;
  payments: PaymentsReader | undefined;
  apiKeys: ApiKeyStore | undefined;
}

type Handler = (
  d: Dispatch,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  params: Record<string, string>,
) => Promise<true>;

/** Answers 501 when the node has no store for the route. */
function unavailable(res: ServerResponse, what: string): true {
  return sendError(
    res,
    501,
    'STORE_INVALID_INPUT',
    `this node has no ${what} (its store was not made by openStore)`,
  );
}

/** The handler of each operation of `operations.ts` (a test checks both lists agree). */
export const ADMIN_HANDLERS: Record<OperationId, Handler> = {
  getStatus: (d, _req, res) => status(d.node, res),
  pay: (d, req, res, url) => pay(d, req, res, url),
  resetPeerEpoch: (d, req, res) => peerEpoch(d.node, d.log, d.maxBodyBytes, req, res),
  abandonCommand: async (d, _req, res, _url, params) => {
    const abandonCommand = d.node.abandonCommand;
    if (abandonCommand === undefined)
      return sendError(res, 501, 'COMMAND_UNKNOWN', 'this node keeps no commands');
    return abandon(res, (cid) => abandonCommand.call(d.node, cid), params['cid'] ?? '', d.log);
  },
  restoreClosed: (d, req, res) => restoreClosed(d.node, d.log, d.maxBodyBytes, req, res),
  listPayments: (d, _req, res, url) =>
    d.payments
      ? listPayments(d.payments, d.node.address, res, url)
      : Promise.resolve(unavailable(res, 'payments')),
  getPayment: (d, _req, res, url, params) =>
    d.payments
      ? showPayment(d.payments, d.node.address, params['referenceId'] ?? '', res, url)
      : Promise.resolve(unavailable(res, 'payments')),
  listApiKeys: (d, _req, res) =>
    d.apiKeys ? listApiKeys(d.apiKeys, res) : Promise.resolve(unavailable(res, 'API keys')),
  createApiKey: (d, req, res) =>
    d.apiKeys
      ? createApiKey(d.apiKeys, d.log, d.maxBodyBytes, req, res)
      : Promise.resolve(unavailable(res, 'API keys')),
  revokeApiKey: (d, _req, res, _url, params) =>
    d.apiKeys
      ? revokeApiKey(d.apiKeys, d.log, params['id'] ?? '', res)
      : Promise.resolve(unavailable(res, 'API keys')),
  getOpenApi: async (d, _req, res) => sendJson(res, 200, adminOpenApi(d.options.version ?? '0.0.0')),
  streamEvents: (d, req, res, url) => streamEvents(d.node.backofficeEvents, req, res, url),
};

/** The routes that read their own query (the others take none). */
const OWN_QUERY: ReadonlySet<OperationId> = new Set<OperationId>([
  'pay',
  'listPayments',
  'getPayment',
  'streamEvents',
]);

/** The payments view and API keys over the node's store, when it has one made by `openStore`. */
function storeRepositories(node: AdminNode): { payments?: PaymentsReader; apiKeys?: ApiKeyStore } {
  if (node.store === undefined) return {};
  try {
    return { payments: createPaymentsQuery(node.store), apiKeys: createApiKeyRepository(node.store) };
  } catch (err) {
    if (isParleyError(err, 'STORE_INVALID_INPUT')) return {};
    throw err;
  }
}

/** Registers the admin routes on `node.http`. */
export function registerAdminRoutes(node: AdminNode, options: AdminRoutesOptions = {}): void {
  const isTrusted = options.isTrusted ?? ((req: IncomingMessage) => isAdminClient(req, options));
  const afterAck = options.afterAcknowledgement ?? ackFailpoint() ?? (() => undefined);
  const repositories = storeRepositories(node);
  const d: Dispatch = {
    node,
    options,
    log: options.log ?? (() => undefined),
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024,
    /** Call right after an acknowledgement (a 2xx for an accepted operation) is written. */
    acknowledged: (answered) => {
      afterAck();
      return answered;
    },
    payments: options.payments ?? repositories.payments,
    apiKeys: options.apiKeys ?? repositories.apiKeys,
  };

  node.http.route(ADMIN_PREFIX, async (req, res, url) => {
    const method = req.method ?? 'GET';
    const match = matchOperation(method, url.pathname);
    const caller = await callerOf(d, isTrusted, req, res, match?.op);
    if (caller === true) return true;
    if (match === undefined) {
      req.resume();
      return false;
    }
    if ('allow' in match) {
      req.resume();
      return methodNotAllowed(res, match.allow);
    }
    if (!OWN_QUERY.has(match.op.id)) {
      const query = readQuery(url, {});
      if (!query.ok) {
        req.resume();
        return sendQueryProblems(res, query.problems);
      }
    }
    if (match.op.body === undefined) req.resume();
    return ADMIN_HANDLERS[match.op.id](d, req, res, url, match.params);
  });
}
