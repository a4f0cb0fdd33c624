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
/** Sockets of one remote address (an IPv6 /64) in their handshake at once; more get HTTP 503. */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS = 8;
/** Handshake slots (of `maxPendingHandshakes`) kept for the hosts of configured peers. */
export const DEFAULT_RESERVED_HANDSHAKES = 32;
/** The longest handshake deadline a node accepts: a socket that says nothing is dropped by then. */
export const MAX_HANDSHAKE_TIMEOUT_MS = 5000;

/** HTTP: the whole request head must arrive within this time, or 408 and close. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/**
 * HTTP: the whole request (head and body) must arrive within this time, or 408 and close. The
 * answer is not counted: a response that waits (a LIP-1 HTTP answer waiting on the channel, a
 * dashboard long poll) is bounded its own way.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** HTTP: an idle keep-alive connection is closed after this time. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5000;
/** TCP connections the server holds at once (channels, handshakes, HTTP); more are dropped at accept. */
export const DEFAULT_MAX_CONNECTIONS = 4096;
/** The largest `maxFrameBytes` a node accepts (16 MiB): real frames are a few KiB. */
export const MAX_CHANNEL_MAX_FRAME_BYTES = 16 * 1024 * 1024;
