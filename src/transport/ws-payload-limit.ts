/**
 * The frame-size limit of a `ws` socket, changed while it is open: before authentication only
 * handshake-sized frames (`MAX_HANDSHAKE_FRAME_BYTES`) are accepted, so `ws` refuses a larger
 * frame from its header (1009) before buffering any of its payload, and the channel's limit
 * (`maxFrameBytes`) applies once the peer has authenticated. Memory before authentication is
 * thus bounded whatever `maxFrameBytes` is.
 *
 * `ws` has no public API for it: this sets its receiver's `_maxPayload`, which its receiver
 * compares with each frame's declared length (ws 8.x). The `ws` version is pinned in
 * package.json, and `test/security/preauth-memory.test.ts` fails if the internals change.
 */
import type { WebSocket } from 'ws';
import { ParleyError } from '../errors.js';

interface ReceiverInternals {
  _maxPayload?: unknown;
}

/**
 * Sets the largest frame `ws` accepts on this socket from its next frame on.
 * @throws ParleyError `TRANSPORT_INTERNAL_ERROR` when the `ws` internals are not as expected.
 */
export function setMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: ReceiverInternals | null })._receiver;
  if (!receiver || typeof receiver._maxPayload !== 'number') {
    throw new ParleyError('TRANSPORT_INTERNAL_ERROR', 'cannot set the frame limit of this ws version');
  }
  receiver._maxPayload = bytes;
}
