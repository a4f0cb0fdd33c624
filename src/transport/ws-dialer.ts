/**
 * The dialer side of a channel: `dial` runs one connect + handshake (PROTOCOL.md §5.1);
 * `createReconnectingDialer` keeps one connection to a peer up forever, redialing with capped
 * exponential backoff and full jitter.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { type ClientOptions, WebSocket } from 'ws';
import { ParleyError } from '../errors.js';
import {
  CloseCode,
  MAX_HANDSHAKE_FRAME_BYTES,
  type PrivateKey,
  publicKeyFromHex,
  UNRESPONSIVE_REASON,
} from '../protocol/index.js';
import { createRedialPolicy } from './backoff.js';
import { asParleyError, isRefusal } from './close-errors.js';
import {
  DEFAULT_CHANNEL_MAX_FRAME_BYTES,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
} from './defaults.js';
import { buildHello, checkAck, type LocalState } from './handshake.js';
import { createHandshakeReader } from './handshake-reader.js';
import { isLoopbackHost } from './loopback.js';
import type { Connection, PeerEntry } from './types.js';
import { type ConnectionOptions, createWsConnection } from './ws-connection.js';
import { setMaxPayload } from './ws-payload-limit.js';

/** User knobs of {@link dial}. */
export interface DialOptions extends ConnectionOptions {
  /** Largest frame accepted from the peer, in bytes; larger closes with 1009. @default 1048576 */
  maxFrameBytes?: number;
  /** Connect + handshake must finish in this time (else `AUTH_HANDSHAKE_TIMEOUT`). @default 5000 */
  handshakeTimeoutMs?: number;
  /** Allow a plain `ws://` URL on a non-loopback host. @default false */
  allowInsecure?: boolean;
  /** TLS settings for `wss://`: `ca` trusts a private or self-signed certificate. */
  tls?: { ca?: string | Buffer | Array<string | Buffer>; servername?: string };
  /** Wait this long for the peer's close frame before dropping the socket. @default 5000 */
  closeTimeoutMs?: number;
  /** Aborts the dial (rejects with `TRANSPORT_GOING_AWAY`). */
  signal?: AbortSignal;
}

/** Collaborators of {@link dial}. */
export interface DialDeps {
  /** This node's address (bech32, zero subaddress). */
  me: string;
  /** This node's compliance key. */
  myKey: PrivateKey;
  /** What to announce to `peer` in the hello. */
  localState(peer: string): LocalState | Promise<LocalState>;
  /** Wall clock for the hello timestamp. @default Date */
  clock?: { now(): number };
}

function parseUrl(peer: PeerEntry): URL {
  if (peer.url === undefined)
    throw new ParleyError('CONFIG_INVALID', `peer ${peer.address} has no url to dial`);
  let url: URL;
  try {
    url = new URL(peer.url);
  } catch (err) {
    throw new ParleyError('CONFIG_INVALID', `peer ${peer.address} has an invalid url`, { cause: err });
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ParleyError('CONFIG_INVALID', `peer ${peer.address} url is not ws:// or wss://`);
  }
  return url;
}

/**
 * Connects to `peer.url` and runs the dialer side of the handshake.
 *
 * @throws ParleyError `CONFIG_INVALID` (no or bad url), `KEY_INVALID` (bad directory key),
 *   `TRANSPORT_INSECURE` (`ws://` to a non-loopback host without `allowInsecure`: nothing is
 *   sent), `TRANSPORT_CONNECT_FAILED` (TCP, TLS or HTTP upgrade failed),
 *   `AUTH_HANDSHAKE_TIMEOUT`, `TRANSPORT_GOING_AWAY` (aborted), an `AUTH_*` or `PROTOCOL_*`
 *   code when the ack breaks a rule (we close with its code) or the peer closed us with a
 *   code during the handshake (see `close-errors.ts`), `TRANSPORT_CLOSED` otherwise.
 */
export async function dial(peer: PeerEntry, options: DialOptions, deps: DialDeps): Promise<Connection> {
  const url = parseUrl(peer);
  if (url.protocol === 'ws:' && !(options.allowInsecure ?? false) && !isLoopbackHost(url.hostname)) {
    throw new ParleyError('TRANSPORT_INSECURE', `plain ws to ${url.hostname} needs wss or allowInsecure`);
  }
  const peerKey = publicKeyFromHex(peer.publicKeyHex);
  const clock = deps.clock ?? Date;
  if (options.signal?.aborted) throw new ParleyError('TRANSPORT_GOING_AWAY', 'dial aborted');
  let local: LocalState;
  try {
    local = await deps.localState(peer.address);
  } catch (err) {
    // A refusal of mine (my business refuses this peer now) is said as such; the reconnecting
    // dialer tries again later.
    if (isRefusal(err)) throw err;
    throw new ParleyError('TRANSPORT_INTERNAL_ERROR', 'local state unavailable', { cause: err });
  }
  const self = { me: deps.me, myKey: deps.myKey, local };

  // `closeTimeout` exists in ws 8.23 but not yet in @types/ws.
  const wsOptions: ClientOptions & { closeTimeout: number } = {
    perMessageDeflate: false,
    // Only handshake frames until the ack verifies (as on the acceptor, `ws-payload-limit.ts`).
    maxPayload: Math.min(MAX_HANDSHAKE_FRAME_BYTES, options.maxFrameBytes ?? DEFAULT_CHANNEL_MAX_FRAME_BYTES),
    followRedirects: false,
    closeTimeout: options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
    ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
    ...(options.tls?.servername !== undefined ? { servername: options.tls.servername } : {}),
  };
  let ws: WebSocket;
  try {
    ws = new WebSocket(url, wsOptions);
  } catch (err) {
    throw new ParleyError('TRANSPORT_CONNECT_FAILED', `cannot connect to ${url.host}`, { cause: err });
  }
  const reader = createHandshakeReader(ws, {
    timeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
  });
  const onAbort = (): void => reader.fail(new ParleyError('TRANSPORT_GOING_AWAY', 'dial aborted'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort(); // aborted while the local state was read
  try {
    await reader.opened();
    const hello = await buildHello(self, peer.address, clock.now());
    reader.check();
    ws.send(hello.jws);
    const ackJws = await reader.next();
    const { confirmJws, result } = await checkAck(
      ackJws,
      self,
      { address: peer.address, key: peerKey },
      hello,
    );
    reader.check();
    // The acceptor may send channel frames right after my confirm.
    setMaxPayload(ws, options.maxFrameBytes ?? DEFAULT_CHANNEL_MAX_FRAME_BYTES);
    ws.send(confirmJws);
    return createWsConnection(ws, result, options, reader.detach());
  } catch (err) {
    const error = asParleyError(err, 'TRANSPORT_INTERNAL_ERROR', 'handshake failed unexpectedly');
    reader.fail(error);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** User knobs of {@link createReconnectingDialer}. */
export interface ReconnectingDialerOptions extends Omit<DialOptions, 'signal'> {
  /** Ceiling of the first backoff delay. @default 100 */
  initialDelayMs?: number;
  /** Longest backoff delay. @default 30000 */
  maxDelayMs?: number;
  /**
   * A connection that lived this long resets the backoff to `initialDelayMs` (a fallback for a
   * dialer nobody calls `markHealthy` on). @default 10000
   */
  stableAfterMs?: number;
  /** Shortest redial delay after the peer closed with 1001 (going away). @default 50 */
  restartMinDelayMs?: number;
  /** Longest redial delay after the peer closed with 1001 (exclusive). @default 250 */
  restartMaxDelayMs?: number;
  /** How long after such a close redials keep the short delay before the backoff. @default 30000 */
  restartWindowMs?: number;
}

/** Collaborators of {@link createReconnectingDialer}. */
export interface ReconnectingDialerDeps extends DialDeps {
  /** Schedules the backoff delays and measures connection lifetimes (virtual time in tests). @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Uniform in [0, 1), for the jitter. @default Math.random */
  random?: () => number;
  /** Replaces {@link dial} (tests). */
  dial?: (peer: PeerEntry, options: DialOptions, deps: DialDeps) => Promise<Connection>;
  /**
   * The live connection to `peer` that this node already has (e.g. the registry's current
   * one, accepted from the peer). While it is open the dialer does not dial: it waits for it
   * to close. Without this, a dialer that lost the duplicate tie-break would redial forever.
   */
  liveConnection?: (peer: string) => Connection | undefined;
}

/** What a reconnecting dialer does, as facts (for logs, metrics and tests). */
export type DialerEvent =
  | { type: 'dialing' }
  | { type: 'connected'; connection: Connection }
  | { type: 'dial_failed'; error: ParleyError }
  | { type: 'disconnected'; code: number; reason: string; livedMs: number }
  | { type: 'backoff'; attempt: number; delayMs: number; kind: 'backoff' | 'restart' }
  | { type: 'healthy' }
  | { type: 'waiting'; connection: Connection };

/** A dialer that keeps a connection to one peer. */
export interface ReconnectingDialer {
  /** Each new connection (hot; completes on close). */
  readonly connections$: Observable<Connection>;
  /** Dial attempts, failures, disconnects and backoff delays (hot; completes on close). */
  readonly events$: Observable<DialerEvent>;
  /** The connection this dialer made that is still open, if any. */
  readonly current: Connection | undefined;
  /**
   * The channel to the peer carried heartbeats both ways on its current connection: the peer is
   * reachable, so the next redial starts the backoff from its first delay.
   */
  markHealthy(): void;
  /** Stops redialing, aborts a dial in progress and closes the current connection (1001). Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Dials `peer` (first attempt right away, on the scheduler) and redials after every failure or
 * disconnect, forever: the n-th consecutive delay is uniform in `[0, min(maxDelayMs,
 * initialDelayMs·2ⁿ))`; `n` goes back to 0 on `markHealthy()` (heartbeats went both ways) or
 * after a connection that lived `stableAfterMs`. When the peer closes a connection with 1001
 * (going away: it is restarting), redials wait `[restartMinDelayMs, restartMaxDelayMs)` for
 * `restartWindowMs` (see `createRedialPolicy`). Subscribe to `connections$` right after
 * creating it: it is hot.
 */
export function createReconnectingDialer(
  peer: PeerEntry,
  options: ReconnectingDialerOptions,
  deps: ReconnectingDialerDeps,
): ReconnectingDialer {
  const scheduler = deps.scheduler ?? asyncScheduler;
  const random = deps.random ?? Math.random;
  const dialOnce = deps.dial ?? dial;
  const policy = createRedialPolicy(
    {
      initialDelayMs: options.initialDelayMs ?? 100,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      restartMinDelayMs: options.restartMinDelayMs ?? 50,
      restartMaxDelayMs: options.restartMaxDelayMs ?? 250,
      restartWindowMs: options.restartWindowMs ?? 30_000,
    },
    random,
  );
  const stableAfterMs = options.stableAfterMs ?? 10_000;
  const connections = new Subject<Connection>();
  const events = new Subject<DialerEvent>();
  let stopped = false;
  let timer: Subscription | undefined;
  let abort: AbortController | undefined;
  let inflight: Promise<unknown> | undefined;
  let current: Connection | undefined;
  let stopping: Promise<void> | undefined;

  function schedule(delayMs: number): void {
    timer = scheduler.schedule(() => {
      timer = undefined;
      attemptDial();
    }, delayMs);
  }

  function backOff(): void {
    if (stopped) return;
    const { attempt, delayMs, kind } = policy.next(scheduler.now());
    events.next({ type: 'backoff', attempt, delayMs, kind });
    schedule(delayMs);
  }

  /** A connection to the peer (mine, or the one I waited on) closed: redial. */
  function afterClose(closed: { code: number; reason?: string; byPeer?: boolean }): void {
    if (stopped) return;
    // The peer said it is going away (a restart): it listens again soon. A peer that dropped
    // this link because it found me unresponsive is not restarting: back off as usual.
    if (
      closed.code === CloseCode.GOING_AWAY &&
      closed.byPeer === true &&
      closed.reason !== UNRESPONSIVE_REASON
    ) {
      policy.peerGoingAway(scheduler.now());
    }
    backOff();
  }

  function attemptDial(): void {
    if (stopped) return;
    const other = deps.liveConnection?.(peer.address);
    if (other !== undefined && other.state === 'open') {
      events.next({ type: 'waiting', connection: other });
      void other.closed.then(afterClose);
      return;
    }
    const controller = new AbortController();
    abort = controller;
    events.next({ type: 'dialing' });
    inflight = dialOnce(peer, { ...options, signal: controller.signal }, deps).then(
      connected,
      (err: unknown) => {
        abort = undefined;
        if (stopped) return;
        events.next({
          type: 'dial_failed',
          error: asParleyError(err, 'TRANSPORT_INTERNAL_ERROR', 'dial failed'),
        });
        backOff();
      },
    );
  }

  function connected(connection: Connection): void {
    abort = undefined;
    if (stopped) {
      connection.close(CloseCode.GOING_AWAY, 'dialer closed');
      return;
    }
    current = connection;
    const since = scheduler.now();
    events.next({ type: 'connected', connection });
    connections.next(connection);
    void connection.closed.then((closed) => {
      if (current === connection) current = undefined;
      if (stopped) return;
      const livedMs = scheduler.now() - since;
      if (livedMs >= stableAfterMs) policy.reset();
      events.next({ type: 'disconnected', code: closed.code, reason: closed.reason, livedMs });
      afterClose(closed);
    });
  }

  schedule(0);

  const dialer: ReconnectingDialer = {
    connections$: connections.asObservable(),
    events$: events.asObservable(),
    get current() {
      return current;
    },
    markHealthy() {
      if (stopped) return;
      policy.reset();
      events.next({ type: 'healthy' });
    },
    close() {
      stopping ??= (async () => {
        stopped = true;
        timer?.unsubscribe();
        abort?.abort();
        await inflight;
        const live = current;
        if (live !== undefined) {
          live.close(CloseCode.GOING_AWAY, 'dialer closed');
          await live.closed;
        }
        connections.complete();
        events.complete();
      })();
      return stopping;
    },
    [Symbol.asyncDispose]() {
      return dialer.close();
    },
  };
  return dialer;
}
