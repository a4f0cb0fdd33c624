import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/** Handles one HTTP route; return false to fall through to the next handler. */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
) => boolean | Promise<boolean>;

/**
 * The node's plain-HTTP surface (health, metrics, admin, dashboard) on the channel server's
 * port. Each part registers its routes; unknown paths get 404, handler failures
 * `500 INTERNAL`.
 */
export interface HttpRouter {
  /** Register a handler for an exact path, or for every path under a prefix ending in `/`. */
  route(path: string, handler: RouteHandler): void;
  readonly listener: RequestListener;
}

export function createHttpRouter(): HttpRouter {
  const routes: Array<{ path: string; handler: RouteHandler }> = [];
  const matches = (routePath: string, pathname: string): boolean =>
    routePath.endsWith('/') ? pathname.startsWith(routePath) : pathname === routePath;

  const listener: RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void (async () => {
      for (const { path, handler } of routes) {
        if (!matches(path, url.pathname)) continue;
        if (await handler(req, res, url)) return;
      }
      res.statusCode = 404;
      res.end();
    })().catch(() => {
      // A handler that threw instead of answering: the coded `INTERNAL` answer (src/errors.ts),
      // without the error's text (these routes face peers and browsers too).
      if (res.headersSent) res.end();
      else sendJson(res, 500, { error: 'INTERNAL', message: 'an unexpected failure of this node' });
    });
  };
  return {
    route(path, handler) {
      routes.push({ path, handler });
    },
    listener,
  };
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): true {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
  return true;
}

/** Whether the request comes from this machine (admin routes answer only loopback clients). */
export function isLoopbackRequest(req: IncomingMessage): boolean {
  const address = req.socket.remoteAddress ?? '';
  return (
    address === '127.0.0.1' ||
    address === '::1' ||
    address.startsWith('::ffff:127.') ||
    address.startsWith('127.')
  );
}

/**
 * Whether the request comes from a client on this machine: from loopback, and not relayed by a
 * proxy (no `Forwarded`, `X-Forwarded-For` or `X-Real-IP` header). A reverse proxy on this
 * machine connects from loopback on behalf of clients anywhere; proxies add one of these headers
 * (nginx needs `proxy_set_header X-Forwarded-For …`, as usually configured).
 */
export function isLocalRequest(req: IncomingMessage): boolean {
  if (!isLoopbackRequest(req)) return false;
  const h = req.headers;
  return h['forwarded'] === undefined && h['x-forwarded-for'] === undefined && h['x-real-ip'] === undefined;
}

/** Whether `req` carries `Authorization: Bearer <token>` (compared in constant time). */
export function hasBearerToken(req: IncomingMessage, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  // Digests: equal lengths for timingSafeEqual, whatever the caller sent.
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/** Reads a request body up to `maxBytes`; rejects beyond it. */
export async function readBody(req: IncomingMessage, maxBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
