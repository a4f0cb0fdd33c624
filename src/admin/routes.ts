/**
 * The node's admin HTTP routes, on the channel port, for the operator's own machine only:
 *
 * - `GET /admin/status` → `{ address, epoch, url, channels: ChannelSnapshot[] }`
 * - `POST /admin/commands/<cid>/abandon` (src/admin/abandon.ts) → ends a stuck command of mine
 * - `POST /admin/pay` (JSON {@link AdminPayRequest}) → `202 { referenceId, cid }` once the create
 *   is durable in the outbox (never before), or with `?wait=1` `200 { referenceId, outcome: { cid,
 *   status, code } }` once the create has its final response. With `?wait=1`, a create that is
 *   durable but whose channel stopped being served here before the final response answers
 *   `202 { referenceId, cid, durable: true, error: CHANNEL_CLOSED | STORE_LEASE_LOST, message }`.
 *   A create that could not be stored is refused (`src/admin/refusal.ts`): `503` + `Retry-After`
 *   for store and lease failures (on a replica that does not serve the channel:
 *   `503 STORE_LEASE_LOST`), `409` for conflicts, `400` for bad input.
 *
 * - `POST /admin/peer-epoch` (JSON `{ peer, epoch }`) → `200 { peer, epoch, previousEpoch, changed }`
 *   once the peer's superseded `epoch` is its current one again (`parley peer reset-epoch`,
 *   docs/security.md "Peer epoch reset"); `400 HEALTH_EPOCH_UNKNOWN` when it is not one.
 *
 * Errors are `{ error: ErrorCode, message, issues? }`. A refused request changes nothing.
 * docs/acknowledgements.md lists when each answer is given.
 *
 * Only clients on this machine are answered (403 otherwise), and, when the routes have a token
 * (`parley start` makes one per run and writes it to the 0600 runtime file), only requests with
 * `Authorization: Bearer <token>` (401 `ADMIN_UNAUTHORIZED` otherwise): behind a reverse proxy
 * on the same machine every request comes from loopback, with whatever Host the proxy sets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstValueFrom } from 'rxjs';
import { isParleyError } from '../errors.js';
import { type HostOriginPolicy, isAllowedHostOrigin } from '../http/host-origin.js';
import { enumParam, readQuery, sendQueryProblems } from '../http/query.js';
import { hasBearerToken, isLoopbackRequest, readBody, sendJson } from '../http/router.js';
import type { ChannelSnapshot, VaspNode } from '../node.js';
import { channelAddress } from '../protocol/index.js';
import { registerAbandonRoute } from './abandon.js';
import { ackFailpoint } from './ack-failpoint.js';
import { registerEventStream } from './events-stream.js';
import { AdminPayRequest, type RequestIssue, requestIssues } from './pay-request.js';
import { sendRefusal } from './refusal.js';

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
  Partial<Pick<VaspNode, 'abandonCommand' | 'backofficeEvents'>> & {
    readonly health?: {
      snapshot(): readonly AdminHealthSnapshot[];
      readonly peerBehind?: { snapshot(): readonly AdminPeerBehind[] };
      readonly backoffice?: { snapshot(): readonly AdminBackoffice[] };
      resetEpoch?(
        peer: string,
        epoch: string,
      ): Promise<{ peer: string; epoch: string; previousEpoch: string | null; changed: boolean }>;
    };
    /** Whether the node's store can write (`src/health/store-writability.ts`). */
    readonly storeWritability?: { snapshot(): AdminStoreStatus };
  };

/** A channel whose peer is `peer_behind`: commands of mine stuck there (docs/operations.md). */
export interface AdminPeerBehind {
  peer: string;
  sinceMs: number;
  commands: number;
  cids: string[];
}

/** A channel whose payments wait for an unanswering back office (`backoffice_unreachable`). */
export interface AdminBackoffice {
  peer: string;
  sinceMs: number;
  requests: number;
  error: string;
}

/** The store's writability in `GET /admin/status`. */
export interface AdminStoreStatus {
  store: 'ok' | 'unwritable';
  code?: string;
  sinceMs?: number;
}

/** A channel in `GET /admin/status`. */
export interface AdminChannelStatus extends ChannelSnapshot {
  /** Liveness from heartbeats (`unknown`, `healthy`, `suspect`, `down`), last RTT and phi. */
  health?: { state: string; rttMs: number | null; phi: number };
  /** Present while the peer is `peer_behind` (LIP-1 HTTP channels too). */
  peerBehind?: AdminPeerBehind;
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
}

/** What the admin routes report (the CLI writes these as JSON log lines). */
export type AdminLogEntry =
  | { event: 'pay_requested'; referenceId: string; to: string; amount: number; currency: string }
  /** The create is durable in the outbox: the payment is acknowledged now. */
  | { event: 'pay_queued'; referenceId: string; cid: string }
  | { event: 'pay_failed'; referenceId: string; code: string; message: string }
  | { event: 'command_abandoned'; peer: string; cid: string; referenceId: string }
  | { event: 'epoch_reset'; peer: string; epoch: string; previousEpoch: string | null };

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

function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  message: string,
  issues?: RequestIssue[],
): true {
  return sendJson(res, status, issues ? { error, message, issues } : { error, message });
}

function isJsonContentType(value: string | undefined): boolean {
  return value?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/** The query of `POST /admin/pay` (`?wait`, `?wait=1`, `?wait=true`; `0` / `false` do not wait). */
const PAY_QUERY = { wait: enumParam(['', '1', 'true', '0', 'false']) };

/**
 * The JSON body of an admin request, or `true` once the refusal is answered: 415 when it is not
 * `application/json` (which also makes a cross-site browser request need a CORS preflight, never
 * granted), 413 over `maxBodyBytes`, 400 when it is not JSON.
 */
async function jsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<{ value: unknown } | true> {
  if (!isJsonContentType(req.headers['content-type'])) {
    req.resume();
    return sendError(res, 415, 'BUSINESS_INVALID_INPUT', 'the body must be application/json');
  }
  let text: string;
  try {
    text = await readBody(req, maxBodyBytes);
  } catch {
    return sendError(res, 413, 'BUSINESS_INVALID_INPUT', `the body exceeds ${maxBodyBytes} bytes`);
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return sendError(res, 400, 'BUSINESS_INVALID_INPUT', 'the body is not JSON');
  }
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

/** `GET /admin/status`. */
async function status(node: AdminNode, res: ServerResponse): Promise<true> {
  const health = new Map((node.health?.snapshot() ?? []).map((h) => [h.peer, h]));
  const behind = new Map((node.health?.peerBehind?.snapshot() ?? []).map((b) => [b.peer, b]));
  const channels = (await node.status()).map((channel): AdminChannelStatus => {
    const h = health.get(channel.peer);
    const b = behind.get(channel.peer);
    return {
      ...channel,
      ...(h ? { health: { state: h.state, rttMs: h.rttMs, phi: h.phi } } : {}),
      ...(b ? { peerBehind: b } : {}),
    };
  });
  const store = node.storeWritability?.snapshot();
  const backoffice = node.health?.backoffice?.snapshot() ?? [];
  const body: AdminStatus = {
    address: node.address,
    epoch: node.epoch,
    url: node.url,
    ...(store ? { store: { store: store.store, code: store.code, sinceMs: store.sinceMs } } : {}),
    channels,
    ...(backoffice.length > 0 ? { backoffice: [...backoffice] } : {}),
  };
  return sendJson(res, 200, body);
}

/** Registers the admin routes on `node.http`. */
export function registerAdminRoutes(node: AdminNode, options: AdminRoutesOptions = {}): void {
  const isTrusted = options.isTrusted ?? ((req: IncomingMessage) => isAdminClient(req, options));
  const log = options.log ?? (() => undefined);
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const afterAck = options.afterAcknowledgement ?? ackFailpoint() ?? (() => undefined);
  /** Call right after an acknowledgement (a 2xx for an accepted operation) is written. */
  const acknowledged = (answered: true): true => {
    afterAck();
    return answered;
  };

  async function pay(req: IncomingMessage, res: ServerResponse, url: URL): Promise<true> {
    const query = readQuery(url, PAY_QUERY);
    if (!query.ok) {
      req.resume();
      return sendQueryProblems(res, query.problems);
    }
    const wait =
      query.values.wait !== undefined && query.values.wait !== '0' && query.values.wait !== 'false';
    const input = await readPayRequest(req, res, maxBodyBytes);
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
      return acknowledged(sendJson(res, 202, { referenceId, cid }));
    }
    try {
      const outcome = await firstValueFrom(outcome$);
      return acknowledged(
        sendJson(res, 200, {
          referenceId,
          outcome: { cid: outcome.cid, status: outcome.status, code: outcome.code },
        }),
      );
    } catch (err) {
      failed(err);
      if (isParleyError(err, 'CHANNEL_CLOSED') || isParleyError(err, 'STORE_LEASE_LOST')) {
        // Stored, and this replica stopped serving the channel before the final response: the
        // payment is accepted (durable; it completes when the channel is served again) and its
        // outcome is not known here. A retry would start a second payment, so this is a 202.
        return acknowledged(
          sendJson(res, 202, { referenceId, cid, durable: true, error: err.code, message: err.message }),
        );
      }
      // Stored, then ended without a final response (its branch lost a fork, or it was abandoned).
      return sendRefusal(res, err, { referenceId, cid });
    }
  }

  const abandonCommand = node.abandonCommand;
  if (abandonCommand) {
    registerAbandonRoute(
      { http: node.http, abandonCommand: (cid) => abandonCommand.call(node, cid) },
      { isTrusted, log, ...(options.token !== undefined ? { token: options.token } : {}) },
    );
  }

  registerEventStream(node, { isTrusted, ...(options.token !== undefined ? { token: options.token } : {}) });
  node.http.route(ADMIN_PREFIX, async (req, res, url) => {
    if (!isTrusted(req)) {
      req.resume();
      return sendJson(res, 403, { message: 'admin routes answer clients on this machine only' });
    }
    if (options.token !== undefined && !hasBearerToken(req, options.token)) {
      req.resume();
      return sendError(
        res,
        401,
        'ADMIN_UNAUTHORIZED',
        "the admin token is missing or wrong (the CLI reads it from the running node's runtime file)",
      );
    }
    const route = url.pathname.slice(ADMIN_PREFIX.length);
    const method = req.method ?? 'GET';
    if (route === 'status') {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
      const query = readQuery(url, {});
      return query.ok ? status(node, res) : sendQueryProblems(res, query.problems);
    }
    if (route === 'pay') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      return pay(req, res, url);
    }
    if (route === 'peer-epoch') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      const query = readQuery(url, {});
      if (!query.ok) {
        req.resume();
        return sendQueryProblems(res, query.problems);
      }
      return peerEpoch(node, log, maxBodyBytes, req, res);
    }
    return false;
  });
}

function safeChannelAddress(text: string): string | undefined {
  try {
    return channelAddress(text);
  } catch {
    return undefined;
  }
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.setHeader('allow', allow);
  return sendJson(res, 405, { message: `use ${allow}` });
}
