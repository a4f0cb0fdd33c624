/** Defaults shared by the channel server and the dialer (PROTOCOL.md §5–6). */

/** The HTTP path of the channel endpoint. */
export const DEFAULT_CHANNEL_PATH = '/parley/v1';
/** Largest frame a channel accepts (the `ws` `maxPayload`); a larger one closes with 1009. */
export const DEFAULT_CHANNEL_MAX_FRAME_BYTES = 1024 * 1024;
/** The whole handshake (upgrade to confirm) must finish in this time, or the socket closes with 4408. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** How far a hello timestamp may be from the acceptor's clock, either way (else 4411). */
export const DEFAULT_HELLO_MAX_SKEW_MS = 60_000;
/** How long to wait for the peer's close frame after sending ours before dropping the socket. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** Handshakes in progress at once, per server; more upgrades get HTTP 503. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 256;
