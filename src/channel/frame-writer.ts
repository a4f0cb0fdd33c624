import { CloseCode } from '../protocol/close-codes.js';
import type { Connection } from '../transport/types.js';

/**
 * The frames written on one live connection, in order, with backpressure: a frame the socket
 * refuses waits here until it drains. Over `maxQueuedFrames` the peer is not reading what it
 * asks for and the connection is closed (1008): never buffered without bound.
 */
export interface FrameWriter {
  write(frame: string): void;
  /** Frames waiting for the socket to drain. */
  readonly backlog: number;
}

/** `isCurrent` says whether `connection` is still the channel's live one (the queue stops when not). */
export function createFrameWriter(
  connection: Connection,
  maxQueuedFrames: number,
  isCurrent: () => boolean,
): FrameWriter {
  const sendQueue: string[] = [];
  let draining = false;

  async function flush(): Promise<void> {
    if (draining) return;
    draining = true;
    try {
      while (sendQueue.length > 0 && isCurrent()) {
        if (connection.send(sendQueue[0]!)) {
          sendQueue.shift();
          continue;
        }
        // A refused send with nothing buffered is not backpressure: the socket is closing, and
        // `writable()` would resolve at once, so the loop would spin on microtasks and starve
        // the close event that ends it. The close (and the next attach) takes over.
        if (connection.state !== 'open' || connection.bufferedAmount === 0) break;
        await connection.writable();
        if (!isCurrent()) break;
      }
    } finally {
      draining = false;
    }
  }

  return {
    write(frame) {
      if (sendQueue.length > 0 || !connection.send(frame)) {
        // LIP-1 HTTP: the queue holds commands waiting for a free request slot, not bytes a
        // socket could not write (each is in the durable outbox and tracked here anyway).
        if (sendQueue.length >= maxQueuedFrames && !connection.answer) {
          // The peer does not read what it asks for: never buffer without bound.
          connection.close(CloseCode.POLICY_VIOLATION, 'peer is not reading');
          return;
        }
        sendQueue.push(frame);
        void flush();
      }
    },
    get backlog() {
      return sendQueue.length;
    },
  };
}
