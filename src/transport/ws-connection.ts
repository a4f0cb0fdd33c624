/**
 * The `Connection` over an authenticated `ws` WebSocket (after the handshake): the session the
 * handshake established on top of the WebSocket's frame pipe (`createWsPipe`).
 *
 * - `frames$` is hot. Frames that arrive before the first subscription are kept (the socket is
 *   paused when they exceed the high-water mark) and delivered to the first subscriber, so a
 *   consumer that subscribes a moment after the handshake loses nothing.
 * - `send` refuses a frame (returns false) when the socket's unsent bytes would go above the
 *   high-water mark: a peer that stops reading can never make this node buffer without bound.
 *   A frame is always accepted when nothing is buffered, so a frame larger than the mark
 *   cannot wedge the connection. Buffered bytes stay below `highWaterMarkBytes + one frame`.
 * - `close` is idempotent; `closed` reports the code this side sent, or the peer's code (and
 *   `byPeer`), or 1006 when the TCP connection just ended.
 * - Frames sent in one turn of the event loop leave in one socket write: the socket is corked at
 *   the first and uncorked at the end of the turn (`setImmediate`), or as soon as more than the
 *   low-water mark waits. Under load a channel answers many frames per turn, and one system call
 *   per frame cost more than framing them.
 */
import type { Writable } from 'node:stream';
import { Observable, Subject } from 'rxjs';
import type { RawData, WebSocket } from 'ws';
import { CloseCode, isSendableCloseCode, ObservedCloseCode } from '../protocol/index.js';
import { closeReason } from './close-errors.js';
import type { HandshakeResult } from './handshake.js';
import { sizeOf, textOf } from './handshake-reader.js';
import type { AuthenticatedSession, Connection, ConnectionState, FramePipe } from './types.js';

/** Default high-water mark of a connection's send buffer, in bytes. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 4 * 1024 * 1024;
/** Default low-water mark (where `writable()` resolves), in bytes. */
export const DEFAULT_LOW_WATER_MARK_BYTES = 1024 * 1024;

/** Options of a connection. */
export interface ConnectionOptions {
  /** `send` returns false while this many bytes are queued. @default 4194304 (4 MiB) */
  highWaterMarkBytes?: number;
  /** `writable()` resolves once the queue is at or below this (capped at the high-water mark). @default 1048576 (1 MiB) */
  lowWaterMarkBytes?: number;
}

/** The close code `ws` sends for a receive error (its `WS_ERR_*` codes). */
function closeCodeOfWsError(err: Error): number {
  switch ((err as { code?: unknown }).code) {
    case 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH':
    case 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH':
      return CloseCode.FRAME_TOO_LARGE;
    case 'WS_ERR_TOO_MANY_BUFFERED_PARTS':
      return CloseCode.POLICY_VIOLATION;
    case 'WS_ERR_INVALID_UTF8':
      return CloseCode.INVALID_PAYLOAD;
    default:
      return CloseCode.PROTOCOL_ERROR;
  }
}

/**
 * Wraps an open, authenticated WebSocket as a `Connection`.
 *
 * @param pending - frames that arrived during the handshake after its last frame, in order.
 */
export function createWsConnection(
  ws: WebSocket,
  info: HandshakeResult,
  options: ConnectionOptions = {},
  pending: readonly string[] = [],
): Connection {
  return sessionOver(info, createWsPipe(ws, options, pending));
}

/** A connection: `session` (what the handshake established) over `pipe`. */
export function sessionOver(session: AuthenticatedSession, pipe: FramePipe): Connection {
  return {
    ...session,
    frames$: pipe.frames$,
    closed: pipe.closed,
    get state() {
      return pipe.state;
    },
    get bufferedAmount() {
      return pipe.bufferedAmount;
    },
    send: (frame) => pipe.send(frame),
    writable: () => pipe.writable(),
    close: (code, reason) => pipe.close(code, reason),
  };
}

/**
 * The frame pipe of an open WebSocket: text frames in and out with backpressure, and its close.
 *
 * @param pending - frames that arrived before the pipe was made, in order.
 */
export function createWsPipe(
  ws: WebSocket,
  options: ConnectionOptions = {},
  pending: readonly string[] = [],
): FramePipe {
  const highWaterMark = options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES;
  const lowWaterMark = Math.min(options.lowWaterMarkBytes ?? DEFAULT_LOW_WATER_MARK_BYTES, highWaterMark);
  const frames = new Subject<string>();
  /** Frames kept for the first subscriber; `undefined` once it subscribed. */
  let early: string[] | undefined = [...pending];
  let earlyBytes = early.reduce((sum, frame) => sum + Buffer.byteLength(frame, 'utf8'), 0);
  let state: ConnectionState =
    ws.readyState === ws.OPEN ? 'open' : ws.readyState === ws.CLOSING ? 'closing' : 'closed';
  let sentClose: { code: number; reason: string } | undefined;
  let drainWaiters: Array<() => void> = [];
  let resolveClosed!: (value: { code: number; reason: string; byPeer?: boolean }) => void;
  const closed = new Promise<{ code: number; reason: string; byPeer?: boolean }>((resolve) => {
    resolveClosed = resolve;
  });
  // The TCP socket under the WebSocket (`ws` keeps it as `_socket`; absent in a test double).
  const socket = (ws as unknown as { _socket?: Partial<Pick<Writable, 'cork' | 'uncork'>> })._socket;
  let corked = false;
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    socket?.uncork?.();
  };

  function releaseWaiters(): void {
    const waiters = drainWaiters;
    drainWaiters = [];
    for (const wake of waiters) wake();
  }

  function onSent(): void {
    if (drainWaiters.length > 0 && ws.bufferedAmount <= lowWaterMark) releaseWaiters();
  }

  function onMessage(data: RawData, isBinary: boolean): void {
    if (state !== 'open') return;
    if (isBinary) {
      close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not accepted');
      return;
    }
    const text = textOf(data);
    if (early !== undefined) {
      early.push(text);
      earlyBytes += sizeOf(data);
      if (earlyBytes > highWaterMark) ws.pause();
      return;
    }
    frames.next(text);
  }

  function onClose(code: number, reason: Buffer): void {
    state = 'closed';
    ws.off('message', onMessage);
    releaseWaiters();
    frames.complete();
    if (sentClose !== undefined) resolveClosed({ ...sentClose, byPeer: false });
    // No close frame at all (1006): nobody started a close.
    else if (code === ObservedCloseCode.ABNORMAL) resolveClosed({ code, reason: reason.toString('utf8') });
    else resolveClosed({ code, reason: reason.toString('utf8'), byPeer: true });
  }

  // `ws` sends the close frame itself after a receive error and then stops reading, so the
  // peer's echo never arrives and 'close' would report 1006: remember the code `ws` sent.
  function onError(err: Error): void {
    if (state !== 'open') return;
    state = 'closing';
    sentClose = { code: closeCodeOfWsError(err), reason: closeReason(err.message) };
    frames.complete();
    releaseWaiters();
  }

  function close(code: number, reason: string): void {
    if (state !== 'open') return;
    state = 'closing';
    const sendable = isSendableCloseCode(code) ? code : CloseCode.INTERNAL_ERROR;
    sentClose = { code: sendable, reason: closeReason(reason) };
    frames.complete();
    releaseWaiters();
    try {
      ws.close(sentClose.code, sentClose.reason);
    } catch {
      ws.terminate();
    }
  }

  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  // Handed over already closed: 'close' has fired and will not fire again.
  if (ws.readyState === ws.CLOSED) onClose(ObservedCloseCode.ABNORMAL, Buffer.alloc(0));

  const frames$ = new Observable<string>((subscriber) => {
    if (early !== undefined) {
      const buffered = early;
      early = undefined;
      earlyBytes = 0;
      for (const frame of buffered) {
        if (subscriber.closed || state !== 'open') break;
        subscriber.next(frame);
      }
      if (state === 'open') ws.resume();
    }
    return frames.subscribe(subscriber);
  });

  return {
    frames$,
    closed,
    get state() {
      return state;
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send(frame) {
      if (state !== 'open' || ws.readyState !== ws.OPEN) return false;
      const buffered = ws.bufferedAmount;
      if (buffered > 0 && buffered + Buffer.byteLength(frame, 'utf8') > highWaterMark) return false;
      if (!corked && typeof socket?.cork === 'function') {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      ws.send(frame, onSent);
      // Past the low-water mark the frames go at once: the kernel's buffers fill before ours.
      if (corked && ws.bufferedAmount > lowWaterMark) uncork();
      return true;
    },
    writable() {
      if (state !== 'open' || ws.bufferedAmount <= lowWaterMark) return Promise.resolve();
      return new Promise<void>((resolve) => {
        drainWaiters.push(resolve);
      });
    },
    close,
  };
}
