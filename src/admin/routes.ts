/**
 * The node's admin HTTP routes, on the channel port, for the operator's own machine only:
 *
 * - `GET /admin/status` → `{ address, epoch, url, channels: ChannelSnapshot[] }`
 * - `POST /admin/pay` (JSON {@link AdminPayRequest}) → `202 { referenceId }`, or with `?wait=1`
 *   `200 { referenceId, outcome: { cid, status, code } }` once the create has its final response.
 *   On a replica that does not serve the channel (another one does): `503 STORE_LEASE_LOST`.
 *
 * Errors are `{ error: ErrorCode, message, issues? }`. A refused request changes nothing.
 *
 * Only clients on this machine are answered (403 otherwise), and, when the routes have a token
 * (`parley start` makes one per run and writes it to the 0600 runtime file), only requests with
 * `Authorization: Bearer <token>` (401 `ADMIN_UNAUTHORIZED` otherwise): behind a reverse proxy
 * on the same machine every request comes from loopback, with whatever Host the proxy sets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { firstValueFrom } from 'rxjs';
import { isParleyError } from '../errors.js';
import { hasBearerToken, isLoopbackRequest, readBody, sendJson } from '../http/router.js';
import type { ChannelSnapshot, VaspNode } from '../node.js';
import { channelAddress } from '../protocol/index.js';
import { AdminPayRequest, type RequestIssue, requestIssues } from './pay-request.js';

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
export type AdminNode = Pick<
  VaspNode,
  'address' | 'epoch' | 'url' | 'http' | 'channels' | 'pay' | 'status'
> & {
  readonly health?: { snapshot(): readonly AdminHealthSnapshot[] };
  /** Whether the node's store can write (`src/health/store-writability.ts`). */
  readonly storeWritability?: { snapshot(): AdminStoreStatus };
};

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
}

/** What the admin routes report (the CLI writes these as JSON log lines). */
export type AdminLogEntry =
  | { event: 'pay_requested'; referenceId: string; to: string; amount: number; currency: string }
  | { event: 'pay_failed'; referenceId: string; code: string; message: string };

export interface AdminRoutesOptions {
  /** Which clients may use the routes. @default {@link isAdminClient} */
  isTrusted?: (req: IncomingMessage) => boolean;
  /** Receives admin actions, for the log. @default none */
  log?: (entry: AdminLogEntry) => void;
  /** Largest accepted request body. @default 65536 */
  maxBodyBytes?: number;
  /** When set, every request must carry `Authorization: Bearer <token>`. @default none */
  token?: string;
}

/** Path prefix of every admin route. */
export const ADMIN_PREFIX = '/admin/';

/**
 * Whether a Host or Origin names this machine: `localhost`, `127.x.x.x` or `[::1]`, any port.
 * Checking it defeats DNS rebinding, where a web page's own name resolves to 127.0.0.1.
 */
export function isLoopbackHostName(hostOrOrigin: string): boolean {
  let host = hostOrOrigin.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  else if (host.split(':').length === 2) host = host.slice(0, host.indexOf(':'));
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * The default admin client check: the peer socket is on loopback, the Host header (if any)
 * names loopback, and there is no Origin header from another site. A web page in the
 * operator's browser can reach 127.0.0.1 too; it must not be able to start payments.
 */
export function isAdminClient(req: IncomingMessage): boolean {
  if (!isLoopbackRequest(req)) return false;
  const { host, origin } = req.headers;
  if (host !== undefined && !isLoopbackHostName(host)) return false;
  if (origin !== undefined && origin !== 'null' && !isLoopbackHostName(origin)) return false;
  // A sandboxed page sends `Origin: null`; no legitimate admin client does.
  return origin !== 'null';
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

function wantsWait(url: URL): boolean {
  const value = url.searchParams.get('wait');
  return value !== null && value !== '0' && value !== 'false';
}

/** Registers the admin routes on `node.http`. */
export function registerAdminRoutes(node: AdminNode, options: AdminRoutesOptions = {}): void {
  const isTrusted = options.isTrusted ?? isAdminClient;
  const log = options.log ?? (() => undefined);
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;

  async function status(res: ServerResponse): Promise<true> {
    const health = new Map((node.health?.snapshot() ?? []).map((h) => [h.peer, h]));
    const channels = (await node.status()).map((channel): AdminChannelStatus => {
      const h = health.get(channel.peer);
      return h ? { ...channel, health: { state: h.state, rttMs: h.rttMs, phi: h.phi } } : channel;
    });
    const store = node.storeWritability?.snapshot();
    const body: AdminStatus = {
      address: node.address,
      epoch: node.epoch,
      url: node.url,
      ...(store ? { store: { store: store.store, code: store.code, sinceMs: store.sinceMs } } : {}),
      channels,
    };
    return sendJson(res, 200, body);
  }

  async function pay(req: IncomingMessage, res: ServerResponse, url: URL): Promise<true> {
    // Requiring JSON also makes a cross-site browser request need a CORS preflight, which we never grant.
    if (!isJsonContentType(req.headers['content-type'])) {
      return sendError(res, 415, 'BUSINESS_INVALID_INPUT', 'the body must be application/json');
    }
    let text: string;
    try {
      text = await readBody(req, maxBodyBytes);
    } catch {
      return sendError(res, 413, 'BUSINESS_INVALID_INPUT', `the body exceeds ${maxBodyBytes} bytes`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return sendError(res, 400, 'BUSINESS_INVALID_INPUT', 'the body is not JSON');
    }
    const parsed = AdminPayRequest.safeParse(body);
    if (!parsed.success) {
      const issues = requestIssues(parsed.error);
      const summary = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      return sendError(res, 400, 'BUSINESS_INVALID_INPUT', summary, issues);
    }
    const input = parsed.data;
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
    const { referenceId, outcome$ } = started;
    log({ event: 'pay_requested', referenceId, to, amount: input.amount, currency: input.currency });

    if (!wantsWait(url)) {
      outcome$.subscribe({
        error: (err: unknown) =>
          log({
            event: 'pay_failed',
            referenceId,
            code: isParleyError(err) ? err.code : 'INTERNAL',
            message: err instanceof Error ? err.message : String(err),
          }),
      });
      return sendJson(res, 202, { referenceId });
    }
    try {
      const outcome = await firstValueFrom(outcome$);
      return sendJson(res, 200, {
        referenceId,
        outcome: { cid: outcome.cid, status: outcome.status, code: outcome.code },
      });
    } catch (err) {
      // The channel could not sequence the create (the payment was not stored), or it closed
      // before the final response (CHANNEL_CLOSED: the create is in the outbox).
      if (!isParleyError(err)) throw err;
      return sendJson(res, 409, { referenceId, error: err.code, message: err.message });
    }
  }

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
      return status(res);
    }
    if (route === 'pay') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      return pay(req, res, url);
    }
    return false;
  });
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.setHeader('allow', allow);
  return sendJson(res, 405, { message: `use ${allow}` });
}
