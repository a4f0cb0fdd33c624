/**
 * The node's health endpoints on its HTTP router (the channel port):
 *
 * - `GET /healthz`: every channel's health as JSON; HTTP 503 when a configured peer is `down` or
 *   this node's store cannot write (`store: unwritable`, `store-writability.ts`), 200 otherwise (`status` is `ok`, or `degraded` while a peer is `suspect`, `unknown`, or
 *   its open objects diverged).
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
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defer, firstValueFrom, throwError, timeout } from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import { type HttpRouter, hasBearerToken, isLocalRequest, sendJson } from '../http/router.js';
import type { HealthMonitor } from './health-monitor.js';
import type { NodeMetrics } from './metrics.js';
import type { ChannelHealthSnapshot } from './status.js';
import type { StoreWritability, StoreWritabilitySnapshot } from './store-writability.js';

/** Who may read `/healthz`, `/healthz/history` and `/metrics`, besides clients on this machine. */
export interface StatusAccess {
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
  /** A cheap read of the node's store, for `/livez`; rejects when the store cannot answer. */
  probeStore?: () => Promise<unknown>;
  /** Whether the store can write (`/healthz`), and whether that is for `/livez` to report. */
  storeWritability?: Pick<StoreWritability, 'snapshot' | 'livezFailing'>;
}

/** How long `/livez` waits for the store's answer. */
export const LIVEZ_STORE_TIMEOUT_MS = 2000;

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
}

/** The `/healthz` answer for a set of snapshots. */
export function healthz(
  node: { address: string; epoch: string },
  channels: ChannelHealthSnapshot[],
  store?: StoreWritabilitySnapshot,
): { httpStatus: number; body: HealthzBody } {
  const unwritable = store?.store === 'unwritable';
  const down = unwritable || channels.some((c) => c.state === 'down');
  const degraded = channels.some((c) => c.state !== 'healthy' || c.diverged);
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

/** Whether `req` may read the status routes under `access`. */
function mayRead(req: IncomingMessage, access: StatusAccess): boolean {
  if (access.allowRemote || (access.isLocal ?? isLocalRequest)(req)) return true;
  return access.token !== undefined && hasBearerToken(req, access.token);
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
  router.route('/healthz', (req, res) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (!mayRead(req, access)) return unauthorized(res, access);
    const { httpStatus, body } = healthz(
      deps.node,
      deps.monitor.snapshot(),
      deps.storeWritability?.snapshot(),
    );
    res.setHeader('cache-control', 'no-store');
    return sendJson(res, httpStatus, body);
  });

  router.route('/livez', async (req, res) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
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
    if (!mayRead(req, access)) return unauthorized(res, access);
    const limit = Number(url.searchParams.get('limit') ?? '100');
    const before = url.searchParams.get('before');
    const peer = url.searchParams.get('peer');
    const kinds = url.searchParams.getAll('kind');
    if (!Number.isInteger(limit) || limit < 0 || (before !== null && !/^\d+$/.test(before))) {
      return sendJson(res, 400, { error: 'limit and before must be non-negative integers' });
    }
    const records = await deps.monitor.history({
      limit: Math.min(limit, 1000),
      ...(peer !== null ? { peer } : {}),
      ...(kinds.length > 0 ? { kinds } : {}),
      ...(before !== null ? { beforeId: Number(before) } : {}),
    });
    return sendJson(res, 200, { events: records });
  });

  router.route('/metrics', async (req, res) => {
    if (!readMethods.has(req.method ?? 'GET')) return methodNotAllowed(res);
    if (!mayRead(req, access)) return unauthorized(res, access);
    const text = await deps.metrics.metrics();
    res.statusCode = 200;
    res.setHeader('content-type', deps.metrics.contentType);
    res.setHeader('content-length', Buffer.byteLength(text));
    res.end(text);
    return true;
  });
}
