/**
 * WebSocket close codes of the Parley channel (PROTOCOL.md §6), one per rule that ends a
 * connection. A leaf module with no imports, so `errors.ts` may depend on it.
 *
 * 1xxx codes are the standard ones (RFC 6455 §7.4.1) where they say exactly what happened;
 * 4xxx codes are Parley's own, chosen as `4000 + the HTTP status` that means the same thing
 * (graphql-ws does the same), so `4403` reads as "forbidden".
 */
/**
 * The close reason of a connection dropped because its peer went `down` (heartbeats stopped).
 * It is sent with 1001 like a stopping node's close, but says nothing of a restart: a dialer
 * that receives it backs off as usual instead of redialing at the restart pace.
 */
export const UNRESPONSIVE_REASON = 'peer unresponsive';

export const CloseCode = {
  /** Orderly close: the connection is no longer needed. */
  NORMAL: 1000,
  /** The node is shutting down (or a dialer was closed); the peer may reconnect later. */
  GOING_AWAY: 1001,
  /** A WebSocket-level protocol violation. Sent by the `ws` library, never by Parley code. */
  PROTOCOL_ERROR: 1002,
  /** A binary frame: every Parley frame is one text frame. */
  UNSUPPORTED_DATA: 1003,
  /** A text frame that is not valid UTF-8. Sent by the `ws` library. */
  INVALID_PAYLOAD: 1007,
  /** The peer does not read what it asks for: its send queue grew past the limit (channel layer). */
  POLICY_VIOLATION: 1008,
  /** A frame larger than the receiver's limit (`maxFrameBytes`, default 1 MiB). */
  FRAME_TOO_LARGE: 1009,
  /** The receiver failed for a reason of its own (e.g. its store is unavailable). */
  INTERNAL_ERROR: 1011,
  /** A frame that is not a compact JWS, not a valid frame, or not the frame expected now. */
  BAD_FRAME: 4400,
  /** A handshake frame whose signature does not verify with the directory key, or that signs the wrong nonce. */
  BAD_SIGNATURE: 4401,
  /** The sender's address or key is not in the directory, or the hello is addressed to someone else. */
  UNKNOWN_PEER: 4403,
  /** The handshake did not complete within the handshake timeout. */
  HANDSHAKE_TIMEOUT: 4408,
  /** Another live connection between the same two VASPs won the tie-break. */
  DUPLICATE_CONNECTION: 4409,
  /** A hello whose nonce the acceptor has already seen within the skew window. */
  REPLAYED_HELLO: 4410,
  /** A hello whose timestamp is further from the acceptor's clock than the skew window. */
  STALE_HELLO: 4411,
  /**
   * The peer presents a store epoch it has since replaced (a newer epoch was already seen for
   * it): a zombie process or a restored backup (PROTOCOL.md §8.4).
   */
  SUPERSEDED_EPOCH: 4412,
  /**
   * The acceptor is a replica of the VASP that does not own this channel now (another replica
   * holds its lease): the dialer retries with backoff, and the owner dials out itself.
   */
  NOT_OWNER: 4421,
  /** A hello or hello-ack with a `protocol_version` the receiver does not speak. */
  UNSUPPORTED_VERSION: 4426,
} as const;
/** A close code Parley sends (or the `ws` library sends on its behalf). */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Close codes a node observes but that are never sent on the wire (RFC 6455 §7.4.1). */
export const ObservedCloseCode = {
  /** The peer's close frame carried no code. */
  NO_STATUS: 1005,
  /** The TCP connection ended without a close frame (peer crashed, network cut, `terminate`). */
  ABNORMAL: 1006,
} as const;

const NAMES: ReadonlyMap<number, string> = new Map(
  [...Object.entries(CloseCode), ...Object.entries(ObservedCloseCode)].map(([name, code]) => [code, name]),
);

/** The name of a close code (`4403` → `UNKNOWN_PEER`), or `undefined` for a code Parley does not define. */
export function closeCodeName(code: number): string | undefined {
  return NAMES.get(code);
}

/**
 * Whether `code` may be put in a close frame (RFC 6455 §7.4): the registered codes that are
 * not reserved for local use, and the 3000–4999 range.
 */
export function isSendableCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}
