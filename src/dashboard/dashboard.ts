/**
 * The live dashboard: a read-only socket.io server (live state pushed, payments read on request) on the node's HTTP port (next to the
 * channel endpoint and `/healthz`) plus the web page that shows it. The only importer of
 * `socket.io` in `src/`.
 *
 * socket.io runs on a private, never-listening `http.Server`: the node's router hands it the
 * requests under `/socket.io/`, and upgrades on that path are routed to it before the channel
 * server's upgrade handler (which refuses every path but its own). So socket.io never wraps
 * or closes the node's server, and closing the dashboard leaves the channel untouched.
 */
import { readFileSync } from 'node:fs';
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { asyncScheduler, interval, type SchedulerLike, type Subscription } from 'rxjs';
import { Server as SocketIoServer } from 'socket.io';
import { type HostOriginPolicy, hostOriginProblem } from '../http/host-origin.js';
import { readQuery, sendQueryProblems } from '../http/query.js';
import { type HttpRouter, isLocalRequest } from '../http/router.js';
import { observed, settled } from '../util/background.js';
import { type ClientToServerEvents, DASHBOARD_SOCKET_PATH, type ServerToClientEvents } from './events.js';
import {
  createDashboardModel,
  type DashboardModel,
  type DashboardModelDeps,
  type DashboardModelOptions,
} from './model.js';
import { type DashboardPayments, servePayments } from './payments.js';
import {
  type DashboardSource,
  healthInputs,
  isDashboardEvent,
  pastRunInput,
  resyncInput,
  snapshotInput,
} from './sources.js';

export interface DashboardOptions extends DashboardModelOptions, HostOriginPolicy {
  /** Deltas are pushed at most this often (changes in between are batched). @default 250 */
  deltaIntervalMs?: number;
  /** Re-read channel status (open objects, in-flight) this often while a client watches. @default 1000 */
  statusPollMs?: number;
  /**
   * Sample every channel's health (RTT, phi) this often while a client watches, for the
   * charts; four times less often while nobody does (the history is there on connect).
   * @default 500
   */
  sampleIntervalMs?: number;
  /** Serve the page and socket.io to clients that are not on this machine. @default false */
  allowRemote?: boolean;
  /** The failure detector's thresholds, drawn on the phi chart. @default unknown (no lines) */
  thresholds?: { suspectPhi: number | null; downPhi: number | null };
}

export interface DashboardDeps {
  source: DashboardSource;
  /** The node's HTTP server (the channel server's), for socket.io's WebSocket upgrades. */
  httpServer: HttpServer;
  /** The node's HTTP router, for the page and socket.io's polling requests. */
  router: HttpRouter;
  /** @default Date */
  clock?: { now(): number };
  /** The payments view (the admin API's); without it the page's payments section says so. */
  payments?: DashboardPayments;
  /** Drives the delta and status-poll timers. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

export interface Dashboard {
  /** Path of the page on the node's HTTP port. */
  readonly path: string;
  /** Connected socket.io clients. */
  readonly clients: number;
  /** The state behind the page (for tests and the CLI). */
  readonly model: DashboardModel;
  /** Disconnects every client and stops the timers; the node's server keeps running. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Path of the page. */
export const DASHBOARD_PATH = '/dashboard/';

/** The favicon (linked from the page, so a browser does not ask for `/favicon.ico`). */
const FAVICON = 'favicon.svg';

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'payments.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  [FAVICON]: 'image/svg+xml',
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function loadAssets(): Map<string, Buffer> {
  const dir = new URL('./public/', import.meta.url);
  return new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(new URL(name, dir))]));
}

/**
 * Serves the dashboard on a node: `GET /` redirects to `/dashboard/`, the page's assets are
 * served from `src/dashboard/public/`, socket.io (and its browser client at
 * `/socket.io/socket.io.min.js`) answers under `/socket.io/`.
 */
export function createDashboard(options: DashboardOptions, deps: DashboardDeps): Dashboard {
  const deltaIntervalMs = options.deltaIntervalMs ?? 250;
  const statusPollMs = options.statusPollMs ?? 1000;
  const sampleIntervalMs = options.sampleIntervalMs ?? 500;
  const allowRemote = options.allowRemote ?? false;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const { source, router } = deps;
  const assets = loadAssets();
  const model = createDashboardModel({ ...options, deltaIntervalMs }, modelDeps(options, deps));

  // The Host/Origin rules of every browser-reachable route, then who: this machine, or anyone.
  // A refused request is told why (the page's 403 body, socket.io's error message).
  const refusal = (req: IncomingMessage): string | undefined => {
    const problem = hostOriginProblem(req, options);
    if (problem !== undefined) return `HTTP_HOST_NOT_ALLOWED: ${problem}`;
    if (allowRemote || isLocalRequest(req)) return undefined;
    return 'the dashboard answers clients on this machine only (dashboard.allowRemote: serve others, behind your own authentication)';
  };

  // socket.io on a private server that never listens; see the file comment.
  const engineHost = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const io = new SocketIoServer<ClientToServerEvents, ServerToClientEvents>(engineHost, {
    path: DASHBOARD_SOCKET_PATH.slice(0, -1),
    serveClient: true,
    transports: ['polling', 'websocket'],
    // Read-only: nothing a client sends is acted on, so keep what it may send small.
    maxHttpBufferSize: 4096,
    allowRequest: (req, callback) => {
      const why = refusal(req);
      callback(why ?? null, why === undefined);
    },
  });
  const restoreUpgrades = routeUpgrades(
    deps.httpServer,
    (req) => (req.url ?? '').startsWith(DASHBOARD_SOCKET_PATH),
    (req, socket, head) => {
      // engine.io refuses with 400; a refused Host or Origin is a 403, as on every other route.
      const why = refusal(req);
      if (why === undefined) engineHost.emit('upgrade', req, socket, head);
      else {
        const body = `403 Forbidden: ${why}\n`;
        socket.end(
          `HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      }
    },
  );

  router.route(DASHBOARD_SOCKET_PATH, (req, res) => {
    engineHost.emit('request', req, res);
    return true;
  });
  // A route ending in '/' is a prefix route: answer the root only, let every other path fall through.
  router.route('/', (req, res, url) => url.pathname === '/' && redirect(req, res, DASHBOARD_PATH));
  router.route(DASHBOARD_PATH.slice(0, -1), (req, res) => redirect(req, res, DASHBOARD_PATH));
  router.route(DASHBOARD_PATH, (req, res, url) => {
    const why = refusal(req);
    if (why !== undefined) return status(res, 403, why);
    if (req.method !== 'GET' && req.method !== 'HEAD') return status(res, 405);
    const query = readQuery(url, {});
    if (!query.ok) return sendQueryProblems(res, query.problems);
    const name = url.pathname.slice(DASHBOARD_PATH.length) || 'index.html';
    const body = assets.get(name);
    const type = ASSETS[name];
    if (body === undefined || type === undefined) return status(res, 404);
    res.statusCode = 200;
    res.setHeader('content-type', type);
    res.setHeader('content-length', body.length);
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('content-security-policy', CSP);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  });

  const subs: Subscription[] = follow(source, model);

  let closed = false;
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    // A failed read changes nothing shown: the store may be closing, and the next poll tries
    // again.
    refreshing ??= settled(
      source.status().then((rows) => {
        if (!closed) model.status(rows);
      }),
    ).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };
  const flush = (): void => {
    const delta = model.takeDelta();
    if (delta && !closed) io.to(LIVE).emit('delta', delta);
  };
  subs.push(interval(deltaIntervalMs, scheduler).subscribe(flush));
  subs.push(
    interval(statusPollMs, scheduler).subscribe(() => {
      if (io.engine.clientsCount > 0) void refresh();
    }),
  );
  const monitor = source.health;
  if (monitor) {
    const clock = deps.clock ?? Date;
    let tick = 0;
    subs.push(
      interval(sampleIntervalMs, scheduler).subscribe(() => {
        if (tick++ % 4 !== 0 && io.engine.clientsCount === 0) return;
        sampleHealth(monitor, model, clock.now());
      }),
    );
  }
  loadHistory(
    source,
    model,
    { resyncRuns: options.resyncRuns ?? 50, nowMs: (deps.clock ?? Date).now() },
    () => closed,
  );
  // A first status read, so the table has every configured channel before anyone connects.
  void refresh();

  io.on('connection', (socket) => {
    servePayments(socket, deps.payments);
    void (async () => {
      await refresh();
      if (closed || !socket.connected) return;
      // Pending changes go to the existing clients first; the snapshot then includes them, and
      // this client receives only the deltas after it.
      flush();
      socket.emit('snapshot', model.snapshot());
      await socket.join(LIVE);
    })();
  });

  let closing: Promise<void> | undefined;
  const dashboard: Dashboard = {
    path: DASHBOARD_PATH,
    get clients() {
      return io.engine.clientsCount;
    },
    model,
    close() {
      closing ??= (async () => {
        closed = true;
        for (const s of subs) s.unsubscribe();
        restoreUpgrades();
        await settled(io.close()); // closing either way
        await refreshing;
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return dashboard.close();
    },
  };
  return dashboard;
}

/** One sample of the health monitor: every channel's snapshot and the sampled conditions. */
function sampleHealth(
  monitor: NonNullable<DashboardSource['health']>,
  model: DashboardModel,
  atMs: number,
): void {
  let rows: ReturnType<typeof monitor.snapshot>;
  try {
    rows = monitor.snapshot();
  } catch {
    return; // the monitor is closing
  }
  for (const row of rows) model.health(snapshotInput(row, atMs));
  // LIP-1 HTTP channels have no heartbeat snapshot: the conditions are sampled on their own.
  const behind = monitor.peerBehind?.snapshot();
  if (behind) model.peerBehind(behind);
  const backoffice = monitor.backoffice?.snapshot();
  if (backoffice) model.backoffice(backoffice);
  const undeliverable = monitor.eventsDelivery?.snapshot();
  if (undeliverable) model.eventsDelivery(undeliverable);
}

/** What the model knows of the node: who it is, which parts it has, its thresholds. */
function modelDeps(options: DashboardOptions, deps: DashboardDeps): DashboardModelDeps {
  const { source } = deps;
  return {
    node: { address: source.address, epoch: source.epoch, url: source.url },
    features: {
      health: source.health$ !== undefined || source.health !== undefined,
      resync: source.resync$ !== undefined,
      payments: deps.payments !== undefined,
    },
    ...(options.thresholds
      ? { thresholds: { suspectPhi: options.thresholds.suspectPhi, downPhi: options.thresholds.downPhi } }
      : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
  };
}

/** Feeds the node's event streams to the model; returns what stops them. */
function follow(source: DashboardSource, model: DashboardModel): Subscription[] {
  const subs: Subscription[] = [];
  subs.push(
    source.events$.subscribe({
      next: (event) => {
        if (!isDashboardEvent(event)) return;
        const type = event.type;
        if (type === 'resync_started' || type === 'resync_progress' || type === 'resync_finished') {
          // A node puts the runs on `events$` and on `resync$`: read them from one place only.
          const run = source.resync$ ? undefined : resyncInput(event);
          if (run) model.resync(run);
        } else model.nodeEvent(event);
      },
      error: () => undefined,
    }),
  );
  if (source.health$) {
    subs.push(
      source.health$.subscribe({
        next: (event) => {
          for (const h of healthInputs(event)) model.health(h);
        },
        error: () => undefined,
      }),
    );
  }
  if (source.resync$) {
    subs.push(
      source.resync$.subscribe({
        next: (event) => {
          const run = resyncInput(event);
          if (run) model.resync(run);
        },
        error: () => undefined,
      }),
    );
  }
  return subs;
}

/**
 * Loads what happened before this node run: the persisted resync runs, and the state losses of
 * the last 24 hours (the summary's tile counts them).
 */
function loadHistory(
  source: DashboardSource,
  model: DashboardModel,
  options: { resyncRuns: number; nowMs: number },
  closed: () => boolean,
): void {
  // The resync runs of earlier node runs, so the history survives a restart.
  if (source.resyncRuns) {
    // The store may be closing: the live events still count.
    observed(
      source.resyncRuns(undefined, options.resyncRuns).then((records) => {
        if (closed()) return;
        model.pastResyncRuns(records.map(pastRunInput));
      }),
    );
  }
  // The state losses of the last 24 hours, earlier node runs' included, for the summary.
  const history = source.health?.history?.bind(source.health);
  if (history) {
    const since = options.nowMs - 24 * 3600_000;
    // The store may be closing: the live events still count.
    observed(
      history({ kinds: ['peer_state_lost'], limit: 100 }).then((records) => {
        if (closed()) return;
        model.pastStateLosses(
          records.filter((r) => r.atMs >= since).map((r) => ({ peer: r.peer, atMs: r.atMs })),
        );
      }),
    );
  }
}

const LIVE = 'live';

/** An empty answer, or with `why` as a plain-text body (`403 Forbidden: <why>`). */
function status(res: ServerResponse, code: number, why?: string): true {
  res.statusCode = code;
  if (why === undefined) {
    res.end();
    return true;
  }
  const body = `${code} Forbidden: ${why}\n`;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('x-content-type-options', 'nosniff');
  res.end(body);
  return true;
}

function redirect(req: IncomingMessage, res: ServerResponse, to: string): true {
  if (req.method !== 'GET' && req.method !== 'HEAD') return status(res, 405);
  res.statusCode = 302;
  res.setHeader('location', to);
  res.end();
  return true;
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Sends the upgrades that `matches` to `handler` and every other upgrade to the listeners the
 * server already had (engine.io does the same with `request` listeners). Returns the undo.
 */
function routeUpgrades(
  server: HttpServer,
  matches: (req: IncomingMessage) => boolean,
  handler: UpgradeListener,
): () => void {
  const previous = server.listeners('upgrade') as UpgradeListener[];
  const listener: UpgradeListener = (req, socket, head) => {
    if (matches(req)) handler(req, socket, head);
    else for (const l of previous) l.call(server, req, socket, head);
  };
  server.removeAllListeners('upgrade');
  server.on('upgrade', listener);
  return () => {
    server.off('upgrade', listener);
    for (const l of previous) server.on('upgrade', l);
  };
}
