/**
 * The Host and Origin rules of every route a browser can reach on the node's HTTP port (admin,
 * status, dashboard, socket.io): one check, so no route forgets it (docs/security.md,
 * "Browser-reachable routes").
 *
 * - DNS rebinding: a web page whose own name resolves to this node's address sends its own name
 *   in `Host`. A request is answered only when `Host` is absent, names loopback, is an IP
 *   literal (a rebinding page always has a name), or is one of the configured `allowedHosts`.
 * - Cross-site requests: a page of another site sends its origin in `Origin` (always on a
 *   WebSocket upgrade). A request with an `Origin` is answered only when it names loopback, an
 *   allowed host, or the request's own `Host` (the page came from this node). `Origin: null`
 *   (a sandboxed page, a file) is refused.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The host-name part of a Host header or an Origin: lower case, no port, no brackets. */
export function hostNameOf(hostOrOrigin: string): string {
  let host = hostOrOrigin.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').toLowerCase();
  host = host.split('/')[0] ?? '';
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  return host.split(':').length === 2 ? host.slice(0, host.indexOf(':')) : host;
}

/**
 * Whether a Host or Origin names this machine: `localhost`, `127.x.x.x` or `[::1]`, any port.
 * Checking it defeats DNS rebinding, where a web page's own name resolves to 127.0.0.1.
 */
export function isLoopbackHostName(hostOrOrigin: string): boolean {
  const host = hostNameOf(hostOrOrigin);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host names a browser may reach the node by, besides loopback names and IP literals. */
export interface HostOriginPolicy {
  /** Lower-case host names (or IP literals), no port. @default [] */
  allowedHosts?: readonly string[];
}

function isAllowedName(name: string, policy: HostOriginPolicy): boolean {
  return (policy.allowedHosts ?? []).some((allowed) => allowed.toLowerCase() === name);
}

/** The authority (`host[:port]`) of an Origin, lower case. */
function authorityOf(origin: string): string {
  return origin
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
}

/**
 * Why `req` is refused for its Host or Origin header under `policy`, or undefined when neither
 * is a problem. The reason names the header, for the 403 body.
 */
export function hostOriginProblem(req: IncomingMessage, policy: HostOriginPolicy = {}): string | undefined {
  const { host, origin } = req.headers;
  if (host !== undefined) {
    const name = hostNameOf(host);
    if (!(isLoopbackHostName(host) || isIP(name) !== 0 || isAllowedName(name, policy))) {
      return `Host ${JSON.stringify(host)} is not this node (add it to allowedHosts)`;
    }
  }
  if (origin === undefined) return undefined;
  if (origin === 'null') return 'a request with Origin null (a sandboxed page or a file) is refused';
  const sameOrigin = host !== undefined && authorityOf(origin) === host.toLowerCase();
  if (sameOrigin || isLoopbackHostName(origin) || isAllowedName(hostNameOf(origin), policy)) return undefined;
  return `Origin ${JSON.stringify(origin)} is another site (add its host to allowedHosts)`;
}

/** Whether `req` passes {@link hostOriginProblem}. */
export function isAllowedHostOrigin(req: IncomingMessage, policy: HostOriginPolicy = {}): boolean {
  return hostOriginProblem(req, policy) === undefined;
}
