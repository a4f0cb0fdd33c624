/**
 * The channel server: accepts WebSocket upgrades on an HTTP(S) server, runs the acceptor side
 * of the handshake (PROTOCOL.md §5.2) and emits each authenticated `Connection`.
 *
 * With `ws-acceptor.ts` (the handshake on each accepted socket), the only server-side files that
 * import `ws`. It uses `noServer` + `handleUpgrade`, so the
 * channel can share a port with other HTTP endpoints (`/healthz`, `/metrics`): either pass
 * `onRequest`, or `attach()` the channel to a server of your own.
 */
import type { Server as HttpServer, IncomingMessage, RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server as TlsServer } from 'node:tls';
import { type Observable, Subject } from 'rxjs';
import { type ServerOptions, WebSocketServer } from 'ws';
import { ParleyError } from '../errors.js';
import { MAX_HANDSHAKE_FRAME_BYTES, type PrivateKey } from '../protocol/index.js';
import { observed, settled } from '../util/background.js';
import {
  DEFAULT_CHANNEL_MAX_FRAME_BYTES,
  DEFAULT_CHANNEL_PATH,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HELLO_MAX_SKEW_MS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  DEFAULT_RESERVED_HANDSHAKES,
} from './defaults.js';
import type { LocalState } from './handshake.js';
import { createLimitedServer, type HttpServerLimits } from './http-server.js';
import { isLoopbackHost } from './loopback.js';
import { createPreauthSlots, plainAddress } from './preauth-slots.js';
import type { Connection, PeerEntry } from './types.js';
import { createAcceptor } from './ws-acceptor.js';
import type { ConnectionOptions } from './ws-connection.js';

/** User knobs of {@link createChannelServer}. */
export interface ChannelServerOptions extends ConnectionOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one (see `ChannelServer.port`). @default 0 */
  port?: number;
  /** HTTP path of the channel endpoint. @default '/parley/v1' */
  path?: string;
  /** PEM certificate chain and key: the server speaks wss. Without it, plain ws (loopback only). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Allow plain ws on a non-loopback interface (e.g. behind a TLS-terminating proxy). @default false */
  allowInsecure?: boolean;
  /** Largest frame accepted, in bytes (`ws` `maxPayload`); larger closes with 1009. @default 1048576 */
  maxFrameBytes?: number;
  /** Upgrade-to-confirm limit; closes with 4408 after it. @default 5000 */
  handshakeTimeoutMs?: number;
  /** Accepted distance between a hello's timestamp and this node's clock; else 4411. @default 60000 */
  helloMaxSkewMs?: number;
  /** Concurrent handshakes (upgrade to confirm); further upgrades get HTTP 503. @default 256 */
  maxPendingHandshakes?: number;
  /** Concurrent handshakes from one remote address (an IPv6 /64); further get 503. @default 8 */
  maxPendingHandshakesPerAddress?: number;
  /** Handshake slots only the hosts of configured peers may take (`isReservedAddress`). @default 32 */
  reservedHandshakes?: number;
  /** Timeouts and the connection cap of the HTTP(S) server (`http-server.ts`). */
  http?: HttpServerLimits;
  /** Wait this long for the peer's close frame before dropping the socket. @default 5000 */
  closeTimeoutMs?: number;
  /**
   * Handles plain HTTP requests on this server (health, metrics). By default the channel path
   * answers 426 Upgrade Required and any other path 404.
   */
  onRequest?: RequestListener;
}

/** Collaborators of {@link createChannelServer}. */
export interface ChannelServerDeps {
  /** This node's address (bech32, zero subaddress). */
  me: string;
  /** This node's compliance key. */
  myKey: PrivateKey;
  /** The configured counterparty at `address`, or `undefined` (hello refused with 4403). */
  directory(address: string): PeerEntry | undefined | Promise<PeerEntry | undefined>;
  /**
   * What to announce to `peer` in the hello-ack. A failure closes the handshake with 1011, or,
   * for a refusal, with its own close code: 4421 for `TRANSPORT_NOT_OWNER` (another replica of
   * this VASP owns the channel), 4403 for `BUSINESS_NOT_AUTHORIZED` (the business refuses it now).
   */
  localState(peer: string): LocalState | Promise<LocalState>;
  /** Wall clock for hello timestamps. @default Date */
  clock?: { now(): number };
  /** Whether a remote address is a configured peer's host (it may use the reserved handshake slots). */
  isReservedAddress?(address: string): boolean;
}

/** A handshake the server refused or lost (for logs and metrics). */
export interface HandshakeFailure {
  /** Why; `ErrorCode[error.code].close` is the close code sent, when there is one. */
  error: ParleyError;
  /** Remote IP address of the socket. */
  remoteAddress: string | undefined;
}

/** A channel server. `close()` closes it and every connection it accepted. */
export interface ChannelServer {
  /**
   * Resolves once the server listens.
   *
   * @throws ParleyError `TRANSPORT_LISTEN_FAILED` when the port cannot be bound.
   */
  readonly listening: Promise<void>;
  /** The bound TCP port (once `listening` resolved; before, the configured one). */
  readonly port: number;
  /** `ws://host:port/path` or `wss://…` (once `listening` resolved): what peers put in their directory. */
  readonly url: string;
  /** The HTTP(S) server the channel listens on. */
  readonly httpServer: HttpServer;
  /** Authenticated connections, as each handshake completes (hot; completes on close). */
  readonly connections$: Observable<Connection>;
  /** Refused or failed handshakes (hot; completes on close). */
  readonly handshakeFailures$: Observable<HandshakeFailure>;
  /**
   * Serve the channel on another HTTP(S) server too, at `path` (default: the server's path).
   * Upgrades for other paths are left to that server's other listeners. Returns `detach`.
   *
   * @throws ParleyError `TRANSPORT_INSECURE` for a plain server on a non-loopback address
   *   without `allowInsecure`.
   */
  attach(server: HttpServer, path?: string): () => void;
  /** Stops listening and closes every connection (1001). Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function pathOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.on('error', () => {});
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

function isEncrypted(socket: Duplex): boolean {
  return (socket as { encrypted?: unknown }).encrypted === true;
}

function checkPositive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ParleyError('CONFIG_INVALID', `${name} must be a positive integer`);
  }
  return value;
}

/** The options checked, with their defaults. */
function resolveLimits(options: ChannelServerOptions) {
  const maxFrameBytes = checkPositive(
    'maxFrameBytes',
    options.maxFrameBytes ?? DEFAULT_CHANNEL_MAX_FRAME_BYTES,
  );
  const timeoutMs = checkPositive(
    'handshakeTimeoutMs',
    options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  );
  const maxSkewMs = checkPositive('helloMaxSkewMs', options.helloMaxSkewMs ?? DEFAULT_HELLO_MAX_SKEW_MS);
  const maxPending = checkPositive(
    'maxPendingHandshakes',
    options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES,
  );
  const maxPerAddress = checkPositive(
    'maxPendingHandshakesPerAddress',
    options.maxPendingHandshakesPerAddress ?? DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  );
  const reserved = Math.min(options.reservedHandshakes ?? DEFAULT_RESERVED_HANDSHAKES, maxPending);
  const closeTimeout = checkPositive('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
  return { maxFrameBytes, timeoutMs, maxSkewMs, maxPending, maxPerAddress, reserved, closeTimeout };
}

/** Starts `httpServer` listening; `port()` is the bound port once `listening` resolved. */
function listen(
  httpServer: HttpServer,
  host: string,
  configuredPort: number,
): { listening: Promise<void>; port(): number } {
  let port = configuredPort;
  const listening = new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new ParleyError('TRANSPORT_LISTEN_FAILED', `cannot listen on ${host}:${port}`, { cause: err }));
    };
    httpServer.once('error', onError);
    httpServer.listen(port, host, () => {
      httpServer.off('error', onError);
      // After listen, errors of the listening socket are not actionable here; never crash on them.
      httpServer.on('error', () => {});
      const address = httpServer.address();
      if (typeof address === 'object' && address !== null) port = address.port;
      resolve();
    });
  });
  // A caller that never awaits `listening` must not get an unhandled rejection.
  observed(listening);
  return { listening, port: () => port };
}

/**
 * Creates a channel server and starts listening (await `listening`).
 *
 * @throws ParleyError `TRANSPORT_INSECURE` (plain ws on a non-loopback host without
 *   `allowInsecure`: refused before anything binds), `CONFIG_INVALID` (a bad option or TLS
 *   material). A port that cannot be bound rejects `listening` with `TRANSPORT_LISTEN_FAILED`.
 */
export function createChannelServer(options: ChannelServerOptions, deps: ChannelServerDeps): ChannelServer {
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? DEFAULT_CHANNEL_PATH;
  const allowInsecure = options.allowInsecure ?? false;
  if (options.tls === undefined && !allowInsecure && !isLoopbackHost(host)) {
    throw new ParleyError('TRANSPORT_INSECURE', `plain ws on ${host} needs tls or allowInsecure`);
  }
  const limits = resolveLimits(options);
  const slots = createPreauthSlots({
    maxTotal: limits.maxPending,
    maxPerAddress: limits.maxPerAddress,
    reserved: limits.reserved,
    isReserved: (address) => deps.isReservedAddress?.(address) ?? false,
  });
  // `closeTimeout` exists in ws 8.23 but not yet in @types/ws.
  const wsOptions: ServerOptions & { closeTimeout: number } = {
    noServer: true,
    // Before authentication only handshake frames: a larger frame is refused from its header
    // (1009), before its payload is buffered. Raised to `maxFrameBytes` once the hello verifies.
    maxPayload: Math.min(MAX_HANDSHAKE_FRAME_BYTES, limits.maxFrameBytes),
    perMessageDeflate: false,
    clientTracking: false,
    closeTimeout: limits.closeTimeout,
  };
  const wss = new WebSocketServer(wsOptions);
  const connections = new Subject<Connection>();
  const failures = new Subject<HandshakeFailure>();
  const detachers = new Set<() => void>();
  let closing: Promise<void> | undefined;
  const acceptor = createAcceptor({ ...limits, connection: options }, deps, {
    connections,
    failures,
    closing: () => closing !== undefined,
  });

  function upgradeHandler(servedPath: string, ownServer: boolean) {
    return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (pathOf(req.url) !== servedPath) {
        // On a shared server another listener may serve this path.
        if (ownServer) refuseUpgrade(socket, 404, 'Not Found');
        return;
      }
      const refusal =
        closing !== undefined
          ? ([503, 'Service Unavailable'] as const)
          : !isEncrypted(socket) && !allowInsecure && !isLoopbackHost(req.socket.localAddress ?? '')
            ? ([403, 'Forbidden'] as const)
            : undefined;
      if (refusal !== undefined) {
        refuseUpgrade(socket, refusal[0], refusal[1]);
        return;
      }
      const remoteAddress =
        req.socket.remoteAddress === undefined ? undefined : plainAddress(req.socket.remoteAddress);
      // A slot from the upgrade to the end of the handshake (PROTOCOL.md §5, docs/security.md).
      const slot = slots.take(remoteAddress);
      if ('refused' in slot) {
        refuseUpgrade(socket, 503, 'Service Unavailable');
        return;
      }
      // Released when the handshake ends, or when the socket goes before `ws` hands it over.
      socket.once('close', slot.release);
      socket.on('error', () => {}); // until ws takes the socket over; ws adds its own handling
      wss.handleUpgrade(req, socket, head, (ws) => {
        void acceptor.accept(ws, remoteAddress, slot.release);
      });
    };
  }

  const onRequest: RequestListener =
    options.onRequest ??
    ((req, res) => {
      const here = pathOf(req.url) === path;
      res.statusCode = here ? 426 : 404;
      if (here) res.setHeader('Upgrade', 'websocket');
      res.end();
    });
  const httpServer = createLimitedServer(
    { ...(options.tls ? { tls: options.tls } : {}), ...(options.http ? { limits: options.http } : {}) },
    onRequest,
  );
  httpServer.on('upgrade', upgradeHandler(path, true));
  const { listening, port } = listen(httpServer, host, options.port ?? 0);
  const urlHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;

  async function shutdown(): Promise<void> {
    for (const detach of detachers) detach();
    await settled(listening); // a failure to listen was the caller's to handle
    const stopped = new Promise<void>((resolve) => {
      if (httpServer.listening) httpServer.close(() => resolve());
      else resolve();
    });
    httpServer.closeIdleConnections();
    acceptor.goAway();
    // Every socket ends within closeTimeoutMs: ws drops a peer that does not answer the close.
    await acceptor.socketsClosed();
    httpServer.closeAllConnections();
    await stopped;
    connections.complete();
    failures.complete();
  }

  const server: ChannelServer = {
    listening,
    get port() {
      return port();
    },
    get url() {
      return `${options.tls ? 'wss' : 'ws'}://${urlHost}:${port()}${path}`;
    },
    httpServer,
    connections$: connections.asObservable(),
    handshakeFailures$: failures.asObservable(),
    attach(other, attachPath = path) {
      const bound = other.address();
      if (
        !(other instanceof TlsServer) &&
        !allowInsecure &&
        typeof bound === 'object' &&
        bound !== null &&
        !isLoopbackHost(bound.address)
      ) {
        throw new ParleyError(
          'TRANSPORT_INSECURE',
          `plain ws on ${bound.address} needs tls or allowInsecure`,
        );
      }
      if (closing !== undefined) throw new ParleyError('TRANSPORT_GOING_AWAY', 'server closed');
      const handler = upgradeHandler(attachPath, false);
      other.on('upgrade', handler);
      const detach = (): void => {
        other.off('upgrade', handler);
        detachers.delete(detach);
      };
      detachers.add(detach);
      return detach;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return server.close();
    },
  };
  return server;
}
