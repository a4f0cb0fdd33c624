import type { Observable } from 'rxjs';

/** Life cycle of a connection: `closing` from the moment either side starts the close. */
export type ConnectionState = 'open' | 'closing' | 'closed';

/**
 * What the signed handshake established about a connection: who the peer is (it proved its
 * key, and it is the one in the directory), its store epoch and summary, and this connection's
 * identity and secret.
 */
export interface AuthenticatedSession {
  /** The peer's address (bech32, zero subaddress). */
  readonly peer: string;
  /** The peer's store epoch, from its hello / hello-ack. */
  readonly peerEpoch: string;
  /** Open-object summary the peer announced in the handshake. */
  readonly peerSummary: { count: number; digest: string };
  /** The resync methods the peer's hello named (PROTOCOL.md §7.3); absent: `list` only. */
  readonly peerSyncMethods?: readonly string[];
  /** Whether this side dialed (true) or accepted (false) the connection. */
  readonly dialed: boolean;
  /**
   * Identifier both ends derive from the handshake nonces (32 hex characters): the same value
   * on both sides of one connection (PROTOCOL.md §5.3).
   */
  readonly id: string;
  /**
   * The dialer's hello `timestamp_ms` (the dialer's clock). Both ends know it; it orders two
   * connections of the same dialer (the newer one wins, see `connection-registry.ts`).
   */
  readonly dialedAtMs: number;
  /** A per-connection secret agreed in the signed handshake (for heartbeat MACs), hex. */
  readonly sessionSecret: string;
}

/** The pipe under a connection: text frames in and out, with backpressure, and its close. */
export interface FramePipe {
  /** `open` until either side starts closing. */
  readonly state: ConnectionState;
  /**
   * Incoming frames (hot). Completes when the connection closes; never errors.
   */
  readonly frames$: Observable<string>;
  /**
   * Queue a frame. Returns false when the frame was not queued because the connection is
   * closed or its send buffer is above the high-water mark (backpressure: the caller keeps
   * the frame and tries again after `writable()` resolves).
   */
  send(frame: string): boolean;
  /** Resolves when the send buffer is below the low-water mark again (or the connection closed). */
  writable(): Promise<void>;
  /** Bytes queued in the socket and not yet written. */
  readonly bufferedAmount: number;
  /**
   * Resolves once, when the connection is closed, with the close code and reason; `byPeer` is
   * true when the peer started the close (its close frame came first), false when this side did,
   * absent when the transport cannot tell (or the TCP connection just ended).
   */
  readonly closed: Promise<{ code: number; reason: string; byPeer?: boolean }>;
  /** Idempotent. */
  close(code: number, reason: string): void;
}

/**
 * One authenticated, live connection to a peer: the handshake is done, both sides proved
 * their keys, and the peer is the one in the directory. Each frame is one compact JWS text.
 */
export interface Connection extends AuthenticatedSession, FramePipe {
  /**
   * A transport that pairs each request with its response (the LIP-1 HTTP transport: one HTTP
   * request, one answer) takes the channel's response to `request` here instead of as a frame.
   */
  answer?(request: string, response: string): void;
  /**
   * Such a transport also knows which request a response frame answered: its cid (read from
   * the request when it was sent), once; undefined when it does not know.
   */
  requestCidOf?(response: string): string | undefined;
  /** Such a transport also reports the cid of each request that got no usable answer. */
  readonly undelivered$?: Observable<string>;
}

/** What a node needs to know about a configured counterparty. */
export interface PeerEntry {
  address: string;
  /** Raw Ed25519 public key (32 bytes) as hex. */
  publicKeyHex: string;
  /** ws:// or wss:// URL of its channel endpoint (absent for peers that only dial us); for a `lip1-http` peer, its http(s) base URL. */
  url?: string;
  /** How the channel runs: Parley's WebSocket channel (default) or LIP-1 v1 over HTTP. */
  transport?: 'ws' | 'lip1-http';
}
