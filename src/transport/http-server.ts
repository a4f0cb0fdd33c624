/**
 * The HTTP(S) server a node listens on, with explicit limits (docs/security.md) rather than
 * Node's defaults: a slow request head or body is answered 408 and closed within its timeout,
 * an idle keep-alive connection closed, and the number of connections capped. Only receiving
 * the request is timed: an answer that waits (a LIP-1 HTTP response waiting on the channel, a
 * dashboard long poll) and an upgraded WebSocket are not.
 */
import { createServer as createHttpServer, type Server as HttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { ParleyError } from '../errors.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './defaults.js';

/** Limits of the listening HTTP(S) server. */
export interface HttpServerLimits {
  /** The request head must arrive within this (else 408, closed). @default 10000 */
  headersTimeoutMs?: number;
  /** The whole request must arrive within this; at least `headersTimeoutMs`. @default 30000 */
  requestTimeoutMs?: number;
  /** Idle keep-alive connections close after this. @default 5000 */
  keepAliveTimeoutMs?: number;
  /** TCP connections held at once (WebSockets included); more are dropped at accept. @default 4096 */
  maxConnections?: number;
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ParleyError('CONFIG_INVALID', `${name} must be a positive integer`);
  }
  return value;
}

/**
 * @throws ParleyError `CONFIG_INVALID` for a bad limit or unusable TLS material.
 */
export function createLimitedServer(
  options: { tls?: { cert: string | Buffer; key: string | Buffer }; limits?: HttpServerLimits },
  onRequest: RequestListener,
): HttpServer {
  const limits = options.limits ?? {};
  const headersTimeout = positive('headersTimeoutMs', limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS);
  const requestTimeout = positive('requestTimeoutMs', limits.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
  if (requestTimeout < headersTimeout) {
    throw new ParleyError('CONFIG_INVALID', 'requestTimeoutMs must be at least headersTimeoutMs');
  }
  const keepAliveTimeout = positive(
    'keepAliveTimeoutMs',
    limits.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  );
  const maxConnections = positive('maxConnections', limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  const common = {
    headersTimeout,
    requestTimeout,
    keepAliveTimeout,
    // How often Node looks for requests past their timeout (its default, 30 s, let a slow head
    // live up to 90 s): a quarter of the shortest timeout, at most 1 s.
    connectionsCheckingInterval: Math.max(5, Math.min(1000, Math.floor(headersTimeout / 4))),
  };
  let server: HttpServer;
  try {
    server = options.tls
      ? createHttpsServer({ ...common, cert: options.tls.cert, key: options.tls.key }, onRequest)
      : createHttpServer(common, onRequest);
  } catch (err) {
    throw new ParleyError('CONFIG_INVALID', 'cannot create the server (TLS certificate or key?)', {
      cause: err,
    });
  }
  // Set again on the instance: not every option is read from the constructor on every version.
  server.headersTimeout = headersTimeout;
  server.requestTimeout = requestTimeout;
  server.keepAliveTimeout = keepAliveTimeout;
  server.maxConnections = maxConnections;
  return server;
}
