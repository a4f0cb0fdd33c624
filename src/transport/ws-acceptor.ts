/**
 * The acceptor side of the handshake on the channel server (PROTOCOL.md §5.2): from an upgraded
 * WebSocket to an authenticated `Connection`, or a refusal with its close code. It holds what
 * the server must end on close: the handshakes under way, the live connections, every socket.
 */
import type { Subject } from 'rxjs';
import type { WebSocket } from 'ws';
import { ParleyError } from '../errors.js';
import { CloseCode, MAX_HANDSHAKE_FRAME_BYTES, type PublicKey, publicKeyFromHex } from '../protocol/index.js';
import { asParleyError, isRefusal } from './close-errors.js';
import { buildAck, checkConfirm, checkHello, type LocalState } from './handshake.js';
import { createHandshakeReader, type HandshakeReader } from './handshake-reader.js';
import { createNonceCache } from './replay-cache.js';
import type { Connection, PeerEntry } from './types.js';
import { type ConnectionOptions, createWsConnection } from './ws-connection.js';
import { setMaxPayload } from './ws-payload-limit.js';
import type { ChannelServerDeps, HandshakeFailure } from './ws-server.js';

export interface AcceptorLimits {
  maxFrameBytes: number;
  timeoutMs: number;
  maxSkewMs: number;
  connection: ConnectionOptions;
}

export interface Acceptor {
  /** Runs the handshake on `ws`; `release` frees its pre-authentication slot when it ends. */
  accept(ws: WebSocket, remoteAddress: string | undefined, release: () => void): Promise<void>;
  /** Ends every handshake under way and closes every live connection (1001). */
  goAway(): void;
  /** Resolves once every socket accepted so far has closed. */
  socketsClosed(): Promise<void>;
}

export function createAcceptor(
  limits: AcceptorLimits,
  deps: ChannelServerDeps,
  out: {
    connections: Subject<Connection>;
    failures: Subject<HandshakeFailure>;
    /** Whether the server is closing (a socket handed over now is closed at once). */
    closing(): boolean;
  },
): Acceptor {
  const { maxFrameBytes, timeoutMs, maxSkewMs } = limits;
  const clock = deps.clock ?? Date;
  const nonces = createNonceCache({ windowMs: maxSkewMs });
  const keys = new Map<string, PublicKey>();
  const handshakes = new Set<HandshakeReader>();
  const live = new Set<Connection>();
  const sockets = new Set<Promise<void>>();

  async function keyOf(address: string): Promise<PublicKey | undefined> {
    let entry: PeerEntry | undefined;
    try {
      entry = await deps.directory(address);
    } catch (err) {
      throw asParleyError(err, 'TRANSPORT_INTERNAL_ERROR', 'directory lookup failed');
    }
    if (entry === undefined || entry.address !== address) return undefined;
    const hex = entry.publicKeyHex.toLowerCase();
    let key = keys.get(hex);
    if (key === undefined) {
      try {
        key = publicKeyFromHex(hex);
      } catch {
        return undefined; // a directory entry with a broken key authenticates nobody
      }
      keys.set(hex, key);
    }
    return key;
  }

  async function localStateOf(peer: string): Promise<LocalState> {
    try {
      return await deps.localState(peer);
    } catch (err) {
      // A refusal (not the owner, the business refuses this peer, …) keeps its own close code.
      if (isRefusal(err)) throw err;
      throw new ParleyError('TRANSPORT_INTERNAL_ERROR', 'local state unavailable', { cause: err });
    }
  }

  function trackClose(ws: WebSocket): Promise<void> {
    const done = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    void done.then(() => sockets.delete(done));
    return done;
  }

  return {
    async accept(ws, remoteAddress, release) {
      if (out.closing()) {
        release();
        ws.on('error', () => {}); // 'close' follows; nothing else to do with this socket
        ws.close(CloseCode.GOING_AWAY, 'server shutting down');
        return;
      }
      sockets.add(trackClose(ws));
      // Frames queued while a handshake step runs stay few: the socket pauses past two frames.
      const reader = createHandshakeReader(ws, { timeoutMs, maxQueuedBytes: 2 * MAX_HANDSHAKE_FRAME_BYTES });
      handshakes.add(reader);
      try {
        const helloJws = await reader.next();
        const accepted = await checkHello(helloJws, {
          me: deps.me,
          keyOf,
          nowMs: clock.now(),
          maxSkewMs,
          nonces,
        });
        reader.check();
        // The hello verifies with a configured peer's key: from the ack on, the peer may send
        // channel frames (right after its confirm), which may be up to the channel's limit.
        setMaxPayload(ws, maxFrameBytes);
        const local = await localStateOf(accepted.hello.from);
        reader.check();
        const ack = await buildAck({ me: deps.me, myKey: deps.myKey, local }, accepted, clock.now());
        reader.check();
        ws.send(ack.jws);
        await checkConfirm(await reader.next(), accepted, ack.frame);
        reader.check();
        const connection = createWsConnection(ws, ack.result, limits.connection, reader.detach());
        live.add(connection);
        void connection.closed.then(() => live.delete(connection));
        out.connections.next(connection);
      } catch (err) {
        const error = asParleyError(err, 'TRANSPORT_INTERNAL_ERROR', 'handshake failed unexpectedly');
        reader.fail(error);
        out.failures.next({ error, remoteAddress });
      } finally {
        handshakes.delete(reader);
        release();
      }
    },
    goAway() {
      const goingAway = new ParleyError('TRANSPORT_GOING_AWAY', 'server shutting down');
      for (const reader of handshakes) reader.fail(goingAway);
      for (const connection of live) connection.close(CloseCode.GOING_AWAY, 'server shutting down');
    },
    async socketsClosed() {
      await Promise.all(sockets);
    },
  };
}
