/**
 * The node's health endpoints on its HTTP router (the channel port):
 *
 * - `GET /healthz`: every channel's health as JSON; HTTP 503 when a configured peer is `down` or
 *   this node's store cannot write (`store: unwritable`, `store-writability.ts`), 200 otherwise
 *   (`status` is `ok`, or `degraded` while a peer is `suspect`, `unknown`, its open objects
 *   diverged, or it is `peer_behind`: commands of mine stuck there, in `peerBehind`; or while
 *   payments wait for an unanswering back office, in `backoffice`; or while a closed-object
 *   restore of this node runs, or any restore waits: every restore not finished is in `restores`).
 * - `GET /livez`: this node alone (its process answers and its store answers a read within
 *   {@link LIVEZ_STORE_TIMEOUT_MS}, and has not stayed unwritable with room on its volume for a
 *   minute): 200, or 503 with the store's error code. A liveness probe
 *   wants this one: `/healthz` is 503 when a counterparty is down, which a restart cannot fix.
 * - `GET /healthz/history?peer=&kind=&limit=&before=`: the persisted health history, newest first.
 * - `GET /metrics`: Prometheus exposition of the node's own registry.
 *
 * `/healthz`, its history and `/metrics` name every counterparty of this VASP and how its
 * channel fares: by default they answer clients on this machine only (a counterparty reaching the
 * channel port must not learn who the others are). {@link StatusAccess} opens them to a scraper
 * holding a token, or to everyone; anyone else gets 401 `STATUS_UNAUTHORIZED`. `/livez` says
 * nothing of counterparties and answers anyone.
 *
 * A browser reaches these routes without credentials, so a request without the status token is
 * refused (403 `HTTP_HOST_NOT_ALLOWED`) when its Host or Origin names another site
 * (`src/http/host-origin.ts`: DNS rebinding, cross-site reads); `/livez` too. Every query
 * parameter is validated (400 `HTTP_INVALID_QUERY`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defer, firstValueFrom, throwError, timeout } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import { type HostOriginPolicy, hostOriginProblem } from '../http/host-origin.js';
import { intParam, readQuery, repeated, sendQueryProblems, stringParam } from '../http/query.js';
import { type HttpRouter, hasBearerToken, isLocalRequest, sendJson } from '../http/router.js';
import type { BackofficeSnapshot } from './backoffice.js';
import type { EventsDeliverySnapshot } from './events-delivery.js';
import type { HealthMonitor } from './health-monitor.js';
import type { NodeMetrics } from './metrics.js';
import type { PeerBehindSnapshot } from './peer-behind.js';
import type { ChannelHealthSnapshot } from './status.js';
import type { StoreWritability, StoreWritabilitySnapshot } from './store-writability.js';

/** Where a channel's closed-object restore is (`RestoreStatus` of `src/sync`, PROTOCOL.md §7.6). */
export interface RestoreStatus {
  role: 'leader' | 'follower';
  reason: string;
  state: 'running' | 'waiting' | 'finished';
  compared: number;
  moved: number;
  after: string | null;
  startedAtMs: number;
  atMs: number;
  error?: string;
}

/** Who may read `/healthz`, `/healthz/history` and `/metrics`, besides clients on this machine. */
export interface StatusAccess extends HostOriginPolicy {
  /** Everyone (put the port behind your own authentication). @default false */
  allowRemote?: boolean;
  /** Whoever sends `Authorization: Bearer <token>` (a Prometheus `bearer_token`). @default none */
  token?: string;
  /** Whether a request comes from this machine. @default isLocalRequest (loopback, not proxied) */
  isLocal?: (req: IncomingMessage) => boolean;
}

/** What `/healthz` reports about the node itself. */
export interface HealthRoutesDeps {
  access?: StatusAccess;
  monitor: HealthMonitor;
  metrics: NodeMetrics;
  node: { address: string; epoch: string };
  /** Each channel's closed-object restore that ran or runs in this process (PROTOCOL.md §7.6). */
  restores?: () => RestoreSnapshot[];
  /** A cheap read of the node's store, for `/livez`; rejects when the store cannot answer. */
  probeStore?: () => Promise<unknown>;
  /** Whether the store can write (`/healthz`), and whether that is for `/livez` to report. */
  storeWritability?: Pick<StoreWritability, 'snapshot' | 'livezFailing'>;
}

/** How long `/livez` waits for the store's answer. */
export const LIVEZ_STORE_TIMEOUT_MS = 2000;

/** A channel's closed-object restore, as `/healthz` lists it. */
export type RestoreSnapshot = RestoreStatus & { peer: string };

/** What `/healthz` reports besides the channels' health. */
export interface HealthzParts {
  peerBehind?: PeerBehindSnapshot[];
  store?: StoreWritabilitySnapshot | undefined;
  backoffice?: BackofficeSnapshot[] | undefined;
  eventsUndeliverable?: EventsDeliverySnapshot[] | undefined;
  restores?: RestoreSnapshot[];
}

/**
 * Whether a restore makes the node `degraded`: this node's own record is being restored (its
 * closed objects are not all back yet), or a restore of either side waits (it cannot progress
 * until the next connection, `error` says why) — but for one this node would lead for a peer
 * that does not speak restore (`SYNC_RESTORE_UNSUPPORTED`): listed, nothing here to mend.
 */
const restoreDegrades = (r: RestoreSnapshot): boolean =>
  (r.state === 'waiting' && !(r.role === 'leader' && r.error === 'SYNC_RESTORE_UNSUPPORTED')) ||
  (r.state === 'running' && r.role === 'follower');

/** The `/healthz` body. */
export interface HealthzBody {
  status: 'ok' | 'degraded' | 'down';
  node: string;
  epoch: string;
  /** `unwritable` while the store cannot write (then also `storeCode` and `storeSinceMs`). */
  store?: 'ok' | 'unwritable';
  storeCode?: string;
  storeSinceMs?: number;
  channels: ChannelHealthSnapshot[];
  /** Channels whose peer is `peer_behind` (commands stuck; LIP-1 HTTP channels included). */
  peerBehind: PeerBehindSnapshot[];
  /** Channels whose payments wait for an unanswering back office (`backoffice_unreachable`). */
  backoffice?: BackofficeSnapshot[];
  /** Present while the back-office events stopped moving (`events_undeliverable`). */
  eventsUndeliverable?: EventsDeliverySnapshot[];
  /**
   * Present while a closed-object restore of a channel is not finished: `running` (this node
   * leads it, or the peer restores this node) or `waiting` (stopped until the next connection;
   * `error` says why). `degraded` while this node is being restored or a restore waits.
   */
  restores?: RestoreSnapshot[];
}

/** The `/healthz` answer for a set of snapshots. */
export function healthz(
  node: { address: string; epoch: string },
  channels: ChannelHealthSnapshot[],
  parts: HealthzParts = {},
): { httpStatus: number; body: HealthzBody } {
  const { peerBehind = [], store, backoffice = [], eventsUndeliverable = [] } = parts;
  const restores = (parts.restores ?? []).filter((r) => r.state !== 'finished');
  const unwritable = store?.store === 'unwritable';
  const down = unwritable || channels.some((c) => c.state === 'down');
  const degraded =
    peerBehind.length > 0 ||
    backoffice.length > 0 ||
    eventsUndeliverable.length > 0 ||
    restores.some(restoreDegrades) ||
    channels.some((c) => c.state !== 'healthy' || c.diverged);
  const rounded = channels.map((c) => ({ ...c, phi: Math.round(c.phi * 1000) / 1000 }));
  return {
    httpStatus: down ? 503 : 200,
    body: {
      status: down ? 'down' : degraded ? 'degraded' : 'ok',
      node: node.address,
      epoch: node.epoch,
      ...(store
        ? {
            store: store.store,
            ...(store.code !== undefined ? { storeCode: store.code } : {}),
            ...(store.sinceMs !== undefined ? { storeSinceMs: store.sinceMs } : {}),
          }
        : {}),
      channels: rounded,
      peerBehind,
      ...(backoffice.length > 0 ? { backoffice } : {}),
      ...(eventsUndeliverable.length > 0 ? { eventsUndeliverable } : {}),
      ...(restores.length > 0 ? { restores } : {}),
    },
  };
}

function methodNotAllowed(res: ServerResponse): true {
  res.statusCode = 405;
  res.setHeader('allow', 'GET, HEAD');
  res.end();
  return true;
}

const readMethods = new Set(['GET', 'HEAD']);

/** Whether `req` carries the status token. */
function hasToken(req: IncomingMessage, access: StatusAccess): boolean {
  return access.token !== undefined && hasBearerToken(req, access.token);
}

/** Whether `req` may read the status routes under `access`. */
function mayRead(req: IncomingMessage, access: StatusAccess): boolean {
  return access.allowRemote || (access.isLocal ?? isLocalRequest)(req) || hasToken(req, access);
}

/**
 * Answers 403 when `req` has no status token and names another site in Host or Origin.
 * Returns whether it answered.
 */
function refusedHostOrigin(req: IncomingMessage, res: ServerResponse, access: StatusAccess): boolean {
  if (hasToken(req, access)) return false;
  const problem = hostOriginProblem(req, access);
  if (problem === undefined) return false;
  req.resume();
  sendJson(res, 403, { error: 'HTTP_HOST_NOT_ALLOWED', message: problem });
  return true;
}

/** `/healthz/history`'s query. */
const HISTORY_QUERY = {
  peer: stringParam((v) => (/^[a-z0-9]{1,256}$/.test(v) ? undefined : 'expected a channel address')),
  kind: repeated(stringParam((v) => (/^[a-z_]{1,64}$/.test(v) ? undefined : 'expected a record kind'))),
  limit: intParam(0, 1000),
  before: intParam(1, Number.MAX_SAFE_INTEGER),
};

/** Answers 400 when `url` has query parameters (the route takes none). Returns whether it answered. */
function refusedQuery(url: URL, res: ServerResponse): boolean {
  const query = readQuery(url, {});
  return !query.ok && sendQueryProblems(res, query.problems);
}

function unauthorized(res: ServerResponse, access: StatusAccess): true {
  return sendJson(res, 401, {
    error: 'STATUS_UNAUTHORIZED',
    message:
      access.token === undefined
        ? 'this route answers clients on this machine only (config status.allowRemote or status.token)'
        : 'this route wants the status token (Authorization: Bearer) from clients off this machine',
  });
}

/** Registers `/healthz`, `/healthz/history` and `/metrics` on `router`. */
export function registerHealthRoutes(router: HttpRouter, deps: HealthRoutesDeps): void {
  const access = deps.access ?? {};
  router.route('/healthz', (req, res, url) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (refusedHostOrigin(req, res, access)) return true;
    if (!mayRead(req, access)) return unauthorized(res, access);
    if (refusedQuery(url, res)) return true;
    const { httpStatus, body } = healthz(deps.node, deps.monitor.snapshot(), {
      peerBehind: deps.monitor.peerBehind.snapshot(),
      store: deps.storeWritability?.snapshot(),
      backoffice: deps.monitor.backoffice?.snapshot(),
      eventsUndeliverable: deps.monitor.eventsDelivery?.snapshot(),
      ...(deps.restores ? { restores: deps.restores() } : {}),
    });
    res.setHeader('cache-control', 'no-store');
    return sendJson(res, httpStatus, body);
  });

  router.route('/livez', async (req, res, url) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (refusedHostOrigin(req, res, access) || refusedQuery(url, res)) return true;
    res.setHeader('cache-control', 'no-store');
    const self = { node: deps.node.address, epoch: deps.node.epoch };
    try {
      await firstValueFrom(
        defer(async () => deps.probeStore?.()).pipe(
          timeout({
            first: LIVEZ_STORE_TIMEOUT_MS,
            with: () =>
              throwError(
                () => new ParleyError('STORE_UNAVAILABLE', `no answer within ${LIVEZ_STORE_TIMEOUT_MS} ms`),
              ),
          }),
        ),
      );
    } catch (err) {
      const code = isParleyError(err) ? err.code : 'STORE_UNAVAILABLE';
      return sendJson(res, 503, { status: 'down', ...self, store: code });
    }
    if (deps.storeWritability?.livezFailing()) {
      // Room on the volume for a while, and still no write: a restart may help.
      return sendJson(res, 503, { status: 'down', ...self, store: 'unwritable' });
    }
    return sendJson(res, 200, { status: 'ok', ...self, store: 'ok' });
  });

  router.route('/healthz/history', async (req, res, url) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (refusedHostOrigin(req, res, access)) return true;
    if (!mayRead(req, access)) return unauthorized(res, access);
    const query = readQuery(url, HISTORY_QUERY);
    if (!query.ok) return sendQueryProblems(res, query.problems);
    const { peer, kind: kinds, limit, before } = query.values;
    const records = await deps.monitor.history({
      limit: limit ?? 100,
      ...(peer !== undefined ? { peer } : {}),
      ...(kinds !== undefined && kinds.length > 0 ? { kinds } : {}),
      ...(before !== undefined ? { beforeId: before } : {}),
    });
    return sendJson(res, 200, { events: records });
  });

  router.route('/metrics', async (req, res, url) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (refusedHostOrigin(req, res, access)) return true;
    if (!mayRead(req, access)) return unauthorized(res, access);
    if (refusedQuery(url, res)) return true;
    const text = await deps.metrics.metrics();
    res.statusCode = 200;
    res.setHeader('content-type', deps.metrics.contentType);
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
    return true;
  });
}
