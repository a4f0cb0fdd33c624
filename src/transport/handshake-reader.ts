/**
 * Reads a WebSocket frame by frame while the handshake runs, so the handshake code can be
 * written as straight-line `await reader.next()` steps. It owns the socket until `detach()`:
 * it enforces the handshake timeout and the handshake frame-size limit, and turns every way
 * the socket can fail (connect error, close by the peer, binary frame, timeout) into one coded
 * error. Frames that arrive after the last handshake frame (a dialer may start sending at once)
 * are queued and handed to the connection by `detach()`, never dropped.
 */
import type { RawData, WebSocket } from 'ws';
import { isParleyError, ParleyError } from '../errors.js';
import { MAX_HANDSHAKE_FRAME_BYTES } from '../protocol/index.js';
import { closeCodeFor, closeReason, errorForClose } from './close-errors.js';

/** Options of {@link createHandshakeReader}. */
export interface HandshakeReaderOptions {
  /** The whole handshake (connect included, on the dialer) must finish in this time. */
  timeoutMs: number;
  /** Stop reading the socket while more than this many bytes are queued. @default 1048576 */
  maxQueuedBytes?: number;
}

/** See the module comment. */
export interface HandshakeReader {
  /** Resolves when the socket is open (at once on the acceptor); rejects with the failure. */
  opened(): Promise<void>;
  /**
   * The next text frame, which must be a handshake frame (at most
   * `MAX_HANDSHAKE_FRAME_BYTES`). Rejects with the failure.
   */
  next(): Promise<string>;
  /** Fails the handshake: closes the socket with the error's close code. Idempotent (the first failure wins). */
  fail(err: unknown): void;
  /** Throws the failure, if there is one (call after every `await` that is not `next()`). */
  check(): void;
  /** Hands the socket over: stops the timer, removes the listeners, returns the queued frames. */
  detach(): string[];
}

/** Text of a message; `ws` gives Buffers by default (`binaryType` `nodebuffer`). */
export function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Bytes of a message as received. */
export function sizeOf(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data.byteLength;
}

function errorOfSocket(err: Error, opened: boolean): ParleyError {
  if (!opened) {
    return new ParleyError('TRANSPORT_CONNECT_FAILED', `cannot connect: ${err.message}`, { cause: err });
  }
  const wsCode = (err as { code?: unknown }).code;
  if (wsCode === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || wsCode === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') {
    return new ParleyError('PROTOCOL_FRAME_TOO_LARGE', 'frame larger than the limit', { cause: err });
  }
  return new ParleyError('PROTOCOL_MALFORMED_FRAME', `WebSocket error: ${err.message}`, { cause: err });
}

/** Starts reading `ws` (connecting or open). The timeout starts now. */
export function createHandshakeReader(ws: WebSocket, options: HandshakeReaderOptions): HandshakeReader {
  const maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
  const queue: Array<{ text: string; bytes: number }> = [];
  let queuedBytes = 0;
  let failure: ParleyError | undefined;
  let isOpen = ws.readyState === ws.OPEN;
  let detached = false;
  let openWaiter: { resolve(): void; reject(err: ParleyError): void } | undefined;
  let frameWaiter: { resolve(frame: string): void; reject(err: ParleyError): void } | undefined;

  function fail(err: unknown): void {
    if (failure !== undefined || detached) return;
    failure = isParleyError(err)
      ? err
      : new ParleyError('TRANSPORT_INTERNAL_ERROR', 'handshake failed unexpectedly', { cause: err });
    clearTimeout(timer);
    if (ws.readyState === ws.OPEN) {
      ws.close(closeCodeFor(failure), closeReason(failure.message));
    } else if (ws.readyState === ws.CONNECTING) {
      ws.terminate();
    }
    openWaiter?.reject(failure);
    frameWaiter?.reject(failure);
    openWaiter = undefined;
    frameWaiter = undefined;
  }

  const timer = setTimeout(
    () => fail(new ParleyError('AUTH_HANDSHAKE_TIMEOUT', `no handshake within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );

  function onOpen(): void {
    isOpen = true;
    openWaiter?.resolve();
    openWaiter = undefined;
  }

  function onMessage(data: RawData, isBinary: boolean): void {
    if (failure !== undefined) return;
    if (isBinary) {
      fail(new ParleyError('TRANSPORT_UNSUPPORTED_DATA', 'binary frames are not accepted'));
      return;
    }
    const frame = { text: textOf(data), bytes: sizeOf(data) };
    if (frameWaiter !== undefined) {
      const waiter = frameWaiter;
      frameWaiter = undefined;
      deliver(frame, waiter);
      return;
    }
    queue.push(frame);
    queuedBytes += frame.bytes;
    // Backpressure while the handshake is still busy: the connection resumes the socket.
    if (queuedBytes > maxQueuedBytes) ws.pause();
  }

  function deliver(frame: { text: string; bytes: number }, waiter: NonNullable<typeof frameWaiter>): void {
    if (frame.bytes > MAX_HANDSHAKE_FRAME_BYTES) {
      fail(new ParleyError('PROTOCOL_FRAME_TOO_LARGE', 'handshake frame larger than the limit'));
      waiter.reject(failure as ParleyError);
      return;
    }
    waiter.resolve(frame.text);
  }

  function onClose(code: number, reason: Buffer): void {
    fail(errorForClose(code, reason.toString('utf8')));
  }

  function onError(err: Error): void {
    const error = errorOfSocket(err, isOpen);
    if (error.code === 'PROTOCOL_FRAME_TOO_LARGE') {
      // `ws` sends its 1009 and resumes the socket (on the next tick) to read the peer's close
      // frame: the rest of the oversized frame would be read and dropped, all of it allocated
      // on the way. Stop reading instead (after that resume); the socket goes at the close
      // timeout.
      process.nextTick(() => ws.pause());
    }
    fail(error);
  }

  ws.on('open', onOpen);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);

  return {
    opened() {
      if (failure !== undefined) return Promise.reject(failure);
      if (isOpen) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        openWaiter = { resolve, reject };
      });
    },
    next() {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<string>((resolve, reject) => {
        const waiter = { resolve, reject };
        const queued = queue.shift();
        if (queued === undefined) {
          frameWaiter = waiter;
          return;
        }
        queuedBytes -= queued.bytes;
        deliver(queued, waiter);
      });
    },
    fail,
    check() {
      if (failure !== undefined) throw failure;
    },
    detach() {
      detached = true;
      clearTimeout(timer);
      ws.off('open', onOpen);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      const rest = queue.splice(0).map((frame) => frame.text);
      queuedBytes = 0;
      return rest;
    },
  };
}
