/**
 * The LIP-1 HTTP transport (DESIGN.md §2; `shared/reference/lip1-v1.md` §2.1): a channel to a
 * counterparty that speaks LIP-1 v1 over HTTP, as the reference implementation does, instead of
 * Parley's WebSocket channel. It is a {@link Connection} to the channel logic, so commands to
 * and from such a peer go through the same receiving order, durable outbox, retransmission and
 * business layer as on a WebSocket.
 *
 * - **Out:** each request frame the channel sends is one `POST <url>/v1/<me>/<peer>/command`
 *   with a fresh `X-REQUEST-ID` (32 lowercase hex digits, as the reference sends). The body of
 *   an answer that echoes the id, with HTTP 200 (success) or 400 (failure: a signed command or
 *   protocol error, which the reference's own client never reads), goes to the channel as the
 *   response frame; the channel verifies it. Anything else (no answer, another status, a missing
 *   or different id, a body over the frame limit) is dropped, and the channel retransmits.
 * - **In:** `POST /v1/<peer>/<me>/command` hands the body to the channel as a request frame and
 *   answers with the response frame the channel sends for its cid: 200 for `success`, 400 for
 *   `failure`, the request's `X-REQUEST-ID` echoed. Only a body that verifies with the peer's
 *   key and is a command request goes to the channel (`lip1-http-gate.ts`); anything else is
 *   answered at once, so nothing unauthenticated waits on the channel or holds a slot. A request without `X-REQUEST-ID` gets 400,
 *   plain text, `X-REQUEST-ID: None`, as from the reference.
 * - The peer has no handshake, heartbeats or resync (LIP-1 v1 has none): the other frames the
 *   node would send are dropped, and such a channel is not watched by the health monitor.
 *   Every request and response is still a JWS verified against the directory's key.
 * - Backpressure: at most `maxInflightRequests` outgoing requests at a time; `send` refuses
 *   more and `writable()` waits for room, as a WebSocket's send buffer does.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Observable, Subject } from 'rxjs';
import { parseJson } from '../protocol/codec.js';
import { decodeJwsPayloadUnverified, peekJwsObjectType } from '../protocol/jws.js';
import type { PrivateKey, PublicKey } from '../protocol/keys.js';
import { createLip1RequestGate } from './lip1-http-gate.js';
import type { Connection, ConnectionState } from './types.js';

/** The request header that pairs an HTTP request with its answer (matched case-insensitively). */
const REQUEST_ID_HEADER = 'x-request-id';

export interface Lip1HttpLinkOptions {
  /** This node's address (bech32, zero subaddress): the receiver in inbound paths. */
  me: string;
  /** The counterparty's address. */
  peer: string;
  /** The counterparty's base URL (`http://` or `https://`); requests go to `<url>/v1/<me>/<peer>/command`. */
  url: string;
  /** Largest request or answer body accepted, in bytes. */
  maxFrameBytes: number;
  /** Longest wait for an answer (out) or for the channel's response (in). @default 30000 */
  requestTimeoutMs?: number;
  /** Outgoing requests in flight at most. @default 64 */
  maxInflightRequests?: number;
  /**
   * Inbound requests of this peer (verified with its key) waiting for the channel's response at
   * most; more get 503. @default 256
   */
  maxPendingRequests?: number;
  /** The counterparty's directory key: an inbound request must verify with it before it waits. */
  peerKey: PublicKey;
  /** This node's key, to sign the protocol errors that answer unverifiable or invalid requests. */
  myKey: PrivateKey;
  /** Told of every inbound request refused (for a rate-limited log). */
  onRefused?: (refusal: Lip1Refusal) => void;
}

/** An inbound LIP-1 HTTP request that was refused, and why. */
export type Lip1Refusal = {
  /** The sender named in the path (not authenticated). */
  sender: string;
  status: number;
  /** A short reason: `invalid_signature`, `parsing_error`, `not_a_request`, `unknown_sender`, … */
  reason: string;
  remoteAddress: string | undefined;
};

/** A LIP-1 HTTP channel's connection, and the handler of its inbound route. */
export interface Lip1HttpLink extends Connection {
  /** Answers the inbound HTTP request that carried `request` with the channel's `response`. */
  answer(request: string, response: string): void;
  /** Answers one inbound request on `/v1/<peer>/<me>/command` (the router has matched the path). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

interface Exchange {
  requestId: string;
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

/** The URL path of a LIP-1 command from `sender` to `receiver` (sender first, as 0.0.8 and later). */
const lip1CommandPath = (sender: string, receiver: string): string => `/v1/${sender}/${receiver}/command`;

/** A member of a frame's payload, read without verifying it (routing only); undefined when unreadable. */
function peek(frame: string, member: string): unknown {
  try {
    return (parseJson(decodeJwsPayloadUnverified(frame)) as Record<string, unknown>)[member];
  } catch {
    return undefined;
  }
}
const peekType = (frame: string): unknown => peekJwsObjectType(frame) ?? peek(frame, '_ObjectType');
const peekStatus = (frame: string): unknown => peek(frame, 'status');

/** The body of `req` as text, or null when it is larger than `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit && !over) {
        over = true;
        chunks.length = 0;
        resolve(null);
      }
      if (!over) chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted'));
    });
  });
}

/** The body of an answer as text, or null (and the rest unread) when it is over `limit` bytes. */
async function boundedText(answer: Response, limit: number): Promise<string | null> {
  if (Number(answer.headers.get('content-length') ?? 0) > limit) {
    await answer.body?.cancel();
    return null;
  }
  if (!answer.body) return '';
  const reader = answer.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function plain(res: ServerResponse, status: number, text: string, requestId: string): void {
  if (res.headersSent || res.writableEnded) return;
  res.statusCode = status;
  res.setHeader('X-REQUEST-ID', requestId);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Answers a LIP-1 HTTP request at once with `status` and a plain-text reason, its request id
 * echoed (`None` when it had none), and closes the connection after the answer; the rest of the
 * body is read and dropped (never held).
 */
export function refuseLip1Request(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  text: string,
): void {
  const header = req.headers[REQUEST_ID_HEADER];
  const requestId = (Array.isArray(header) ? header[0] : header) || 'None';
  res.setHeader('Connection', 'close');
  plain(res, status, text, requestId);
  req.resume();
}

export function createLip1HttpLink(options: Lip1HttpLinkOptions): Lip1HttpLink {
  const { me, peer, maxFrameBytes } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const maxInflight = options.maxInflightRequests ?? 64;
  const maxPending = options.maxPendingRequests ?? 256;
  const target = `${options.url.replace(/\/+$/, '')}${lip1CommandPath(me, peer)}`;
  const gate = createLip1RequestGate({ peerKey: options.peerKey, myKey: options.myKey });
  const frames = new Subject<string>();
  const undelivered = new Subject<string>();
  let state: ConnectionState = 'open';
  let resolveClosed!: (value: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    resolveClosed = resolve;
  });
  const outgoing = new Set<AbortController>();
  let writableWaiters: Array<() => void> = [];
  /** Inbound requests waiting for the channel's response, by request body, oldest first. */
  const pending = new Map<string, Exchange[]>();
  let pendingCount = 0;
  /** Answer body → the cid of the request it answered, until the channel asks (`requestCidOf`). */
  const answeredCids = new Map<string, string>();

  function wakeWritable(): void {
    if (state === 'open' && outgoing.size >= Math.ceil(maxInflight / 2)) return;
    const waiters = writableWaiters;
    writableWaiters = [];
    for (const wake of waiters) wake();
  }

  function take(body: string): Exchange | undefined {
    const queue = pending.get(body);
    const exchange = queue?.shift();
    if (queue && queue.length === 0) pending.delete(body);
    if (exchange) {
      pendingCount--;
      clearTimeout(exchange.timer);
    }
    return exchange;
  }

  function forget(body: string, exchange: Exchange): void {
    const queue = pending.get(body);
    const at = queue?.indexOf(exchange) ?? -1;
    if (!queue || at < 0) return;
    queue.splice(at, 1);
    if (queue.length === 0) pending.delete(body);
    pendingCount--;
    clearTimeout(exchange.timer);
  }

  /** One request frame out; its answer (if one comes that pairs with it) in as a frame. */
  async function post(frame: string): Promise<void> {
    const abort = new AbortController();
    outgoing.add(abort);
    const timer = setTimeout(() => abort.abort(), requestTimeoutMs);
    const requestId = randomBytes(16).toString('hex');
    const cid = peek(frame, 'cid');
    let delivered = false;
    try {
      const answer = await fetch(target, {
        method: 'POST',
        headers: { 'X-REQUEST-ID': requestId, 'Content-Type': 'text/plain; charset=utf-8' },
        body: frame,
        signal: abort.signal,
        redirect: 'error',
      });
      // Only an answer that pairs with this request and carries a signed command response.
      const pairs =
        answer.headers.get(REQUEST_ID_HEADER) === requestId &&
        (answer.status === 200 || answer.status === 400);
      const body = pairs ? await boundedText(answer, maxFrameBytes) : null;
      if (!pairs) await answer.body?.cancel();
      if (body === null || state !== 'open' || peekType(body) !== 'CommandResponseObject') return;
      // The answer to this request: a protocol error without a cid (the peer could not read or
      // verify the request) still pairs with it here, unlike on a WebSocket.
      if (typeof cid === 'string') answeredCids.set(body, cid);
      delivered = true;
      frames.next(body);
    } catch {
      // No answer (refused, reset, timed out, closing).
    } finally {
      clearTimeout(timer);
      outgoing.delete(abort);
      // The channel resends it after its backoff.
      if (!delivered && state === 'open' && typeof cid === 'string') undelivered.next(cid);
      wakeWritable();
    }
  }

  const link: Lip1HttpLink = {
    peer,
    // LIP-1 v1 has no store epochs, summaries or handshake: these stay empty.
    peerEpoch: '',
    peerSummary: { count: 0, digest: '' },
    dialed: true,
    id: randomBytes(16).toString('hex'),
    dialedAtMs: Date.now(),
    sessionSecret: '',
    get state() {
      return state;
    },
    frames$: new Observable<string>((subscriber) => frames.subscribe(subscriber)),
    undelivered$: new Observable<string>((subscriber) => undelivered.subscribe(subscriber)),
    get bufferedAmount() {
      return outgoing.size;
    },
    closed,

    send(frame) {
      if (state !== 'open') return false;
      if (peekType(frame) !== 'CommandRequestObject') {
        // Heartbeats, resync and any other Parley frame: a LIP-1 peer does not speak them.
        // (Responses go through `answer`, paired with their request.)
        return true;
      }
      if (outgoing.size >= maxInflight) return false;
      void post(frame);
      return true;
    },

    requestCidOf(response) {
      const cid = answeredCids.get(response);
      answeredCids.delete(response);
      return cid;
    },

    answer(request, response) {
      const exchange = take(request);
      if (!exchange) return; // it timed out, or its client went away
      plain(exchange.res, peekStatus(response) === 'success' ? 200 : 400, response, exchange.requestId);
    },

    writable() {
      if (state !== 'open' || outgoing.size < maxInflight) return Promise.resolve();
      return new Promise<void>((resolve) => writableWaiters.push(resolve));
    },

    async handle(req, res) {
      const header = req.headers[REQUEST_ID_HEADER];
      const requestId = Array.isArray(header) ? header[0] : header;
      const refuse = (status: number, text: string, reason = text): void => {
        options.onRefused?.({ sender: peer, status, reason, remoteAddress: req.socket.remoteAddress });
        refuseLip1Request(req, res, status, text);
      };
      if (!requestId) return refuse(400, 'missing X-REQUEST-ID header', 'missing_request_id');
      if (req.method !== 'POST') return refuse(405, 'POST only', 'method');
      if (Number(req.headers['content-length'] ?? 0) > maxFrameBytes) {
        return refuse(413, `request body larger than ${maxFrameBytes} bytes`, 'too_large');
      }
      if (state !== 'open') return refuse(503, 'channel closed', 'closed');
      const body = await readBody(req, maxFrameBytes);
      if (body === null) return refuse(413, `request body larger than ${maxFrameBytes} bytes`, 'too_large');
      // Nothing waits on the channel before it is the peer's (verified) command request: the
      // rest is answered now (PROTOCOL.md §4), and only the peer can hold its pending slots.
      const refusal = await gate.check(body);
      if (refusal) {
        options.onRefused?.({
          sender: peer,
          status: refusal.status,
          reason: refusal.reason,
          remoteAddress: req.socket.remoteAddress,
        });
        plain(res, refusal.status, refusal.body, requestId);
        return;
      }
      if (state !== 'open') return refuse(503, 'channel closed', 'closed');
      if (pendingCount >= maxPending) return refuse(503, 'too many requests waiting', 'busy');
      const exchange: Exchange = {
        requestId,
        res,
        timer: setTimeout(() => {
          forget(body, exchange);
          plain(res, 503, 'no response in time', requestId);
        }, requestTimeoutMs),
      };
      const queue = pending.get(body);
      if (queue) queue.push(exchange);
      else pending.set(body, [exchange]);
      pendingCount++;
      // The client went away: nothing to answer (the command itself is still handled).
      res.on('close', () => forget(body, exchange));
      frames.next(body);
    },

    close(code, reason) {
      if (state !== 'open') return;
      state = 'closing';
      for (const abort of outgoing) abort.abort();
      for (const [body, queue] of [...pending]) {
        for (const exchange of [...queue]) {
          forget(body, exchange);
          plain(exchange.res, 503, 'channel closed', exchange.requestId);
        }
      }
      state = 'closed';
      answeredCids.clear();
      wakeWritable();
      frames.complete();
      undelivered.complete();
      resolveClosed({ code, reason });
    },
  };
  return link;
}
