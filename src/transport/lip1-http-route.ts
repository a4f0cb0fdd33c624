/**
 * The node's inbound LIP-1 HTTP route, `/v1/<sender>/<me>/command` (the reference's route,
 * sender first): each request goes to the sender's link, or is answered at once (404 for an
 * unknown sender, 503 for a peer this node does not serve now, 401 when my business refuses it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isParleyError } from '../errors.js';
import { type Lip1HttpLink, type Lip1Refusal, refuseLip1Request } from './lip1-http.js';
import type { PeerEntry } from './types.js';

export interface Lip1HttpRouteDeps {
  /** My address: the receiver in the path. */
  me: string;
  /** The peer directory: who is a LIP-1 HTTP peer. */
  directory: ReadonlyMap<string, PeerEntry>;
  /** The links of the LIP-1 HTTP peers this node serves now, by peer. */
  links: ReadonlyMap<string, Lip1HttpLink>;
  /** A request refused as from an unknown sender (reported, rate-limited). */
  onRefused(refusal: Lip1Refusal): void;
  /** Why a peer of ours is not served now (another replica serves it, or the node is closing). */
  unservedReason(sender: string): string;
  /** Asks my business whether to serve `sender` now. @throws BUSINESS_NOT_AUTHORIZED when it refuses */
  openChannelTo(sender: string): Promise<void>;
}

/**
 * The handler of the `/v1/` prefix (an `HttpRouter` route): true when it answered the
 * request, false to fall through (a path that is not the command route, an unknown sender).
 */
export function createLip1HttpRoute(
  deps: Lip1HttpRouteDeps,
): (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean> {
  const { me, directory, links } = deps;
  return (req, res, url) => {
    const [, version, sender, receiver, command, ...rest] = url.pathname.split('/');
    if (version !== 'v1' || command !== 'command' || rest.length > 0 || receiver !== me) return false;
    const link = sender === undefined ? undefined : links.get(sender);
    if (!link) {
      if (sender === undefined || directory.get(sender)?.transport !== 'lip1-http') {
        const remoteAddress = req.socket.remoteAddress;
        deps.onRefused({
          sender: sender ?? '',
          status: 404,
          reason: 'unknown_sender',
          remoteAddress,
        });
        return false;
      }
      // A peer of ours that this node does not serve now: another replica of this VASP does,
      // or the node is closing. The peer retries (LIP-1 resends).
      res.setHeader('Retry-After', '1');
      refuseLip1Request(req, res, 503, deps.unservedReason(sender));
      return true;
    }
    // As the reference: 401 when my business refuses the sender (for now).
    return deps.openChannelTo(sender!).then(
      () => link.handle(req, res).then(() => true),
      (err: unknown) => {
        if (!isParleyError(err, 'BUSINESS_NOT_AUTHORIZED')) throw err;
        refuseLip1Request(req, res, 401, err.message);
        return true;
      },
    );
  };
}
