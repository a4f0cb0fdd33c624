/**
 * The product's error catalog. Every failure Parley reports carries one of these codes.
 *
 * Codes are SCREAMING_SNAKE with a concept prefix; a retired code is never reused.
 * `close` is the WebSocket close code used when the error is fatal for a connection
 * (see `src/protocol/PROTOCOL.md`); `null` means the error is answered in-band.
 * `lip1` is the LIP-1 v1 wire error code sent to a peer, when one applies.
 * The `/** … *\/` line above each code is its meaning: docs/errors.md is generated from them
 * (`npm run docs`), and a code without one fails the docs test.
 */
import { CloseCode } from './protocol/close-codes.js';

export const ErrorCode = {
  // protocol: frames that cannot be accepted
  /** a frame exceeded the size limit */
  PROTOCOL_FRAME_TOO_LARGE: { close: CloseCode.FRAME_TOO_LARGE, retryable: false, lip1: 'parsing_error' },
  /** the frame is not a compact JWS */
  PROTOCOL_NOT_JWS: { close: CloseCode.BAD_FRAME, retryable: false, lip1: 'invalid_signature' },
  /** the signature does not verify with the sender's key */
  PROTOCOL_BAD_SIGNATURE: { close: CloseCode.BAD_SIGNATURE, retryable: false, lip1: 'invalid_signature' },
  /** the payload is not a valid LIP-1 object */
  PROTOCOL_MALFORMED_FRAME: { close: CloseCode.BAD_FRAME, retryable: false, lip1: 'parsing_error' },
  /** a known cid with a different command */
  PROTOCOL_CID_CONFLICT: { close: null, retryable: false, lip1: 'conflict' },
  /** retry later (unknown or locked dependency) */
  PROTOCOL_WAIT: { close: null, retryable: true, lip1: 'wait' },
  // command errors: final, stored, answered with the LIP-1 code
  /** the version read was already consumed */
  COMMAND_USED_DEPENDENCIES: { close: null, retryable: false, lip1: 'used_dependencies' },
  /** a command error from the payment rules or the business layer */
  COMMAND_REJECTED: { close: null, retryable: false, lip1: null },
  // local sending side
  /** sending: the version to read is unknown, consumed or locked */
  CHANNEL_DEPENDENCY_UNAVAILABLE: { close: null, retryable: true, lip1: null },
  /** sending: the command breaks a payment rule or is a duplicate */
  CHANNEL_INVALID_COMMAND: { close: null, retryable: false, lip1: null },
  /** a response that matches no pending command */
  CHANNEL_UNKNOWN_RESPONSE: { close: null, retryable: false, lip1: null },
  // the channel closed before a command's final response (the command stays in the outbox)
  /**
   * the channel closed (node stopping) before a command's final response; the command stays in the outbox
   * and completes when the channel is served again
   */
  CHANNEL_CLOSED: { close: null, retryable: true, lip1: null },
  // the operator abandoned a command of mine (`parley command abandon`): ended here, never resent
  /**
   * the operator abandoned the command (`parley command abandon`, docs/operations.md): ended here, never
   * resent
   */
  COMMAND_ABANDONED: { close: null, retryable: false, lip1: null },
  // `parley command abandon`: no command of mine with this cid, or it already has its final outcome
  /** `parley command abandon`: no command of mine with that cid (HTTP 404) */
  COMMAND_UNKNOWN: { close: null, retryable: false, lip1: null },
  /** `parley command abandon`: the command already has its final outcome or was abandoned (HTTP 409) */
  COMMAND_ALREADY_FINAL: { close: null, retryable: false, lip1: null },
  // channel handshake: mutual authentication (PROTOCOL.md §5)
  /** handshake: address or key not in the directory (close 4403) */
  AUTH_UNKNOWN_PEER: { close: CloseCode.UNKNOWN_PEER, retryable: false, lip1: null },
  /** handshake: a hello that does not verify (close 4401) */
  AUTH_BAD_SIGNATURE: { close: CloseCode.BAD_SIGNATURE, retryable: false, lip1: null },
  /** handshake: a hello nonce seen before (close 4410) */
  AUTH_REPLAYED_HELLO: { close: CloseCode.REPLAYED_HELLO, retryable: true, lip1: null },
  /** handshake: a hello outside the time window (close 4411) */
  AUTH_STALE_HELLO: { close: CloseCode.STALE_HELLO, retryable: true, lip1: null },
  /** handshake: protocol version not supported (close 4426) */
  AUTH_UNSUPPORTED_VERSION: { close: CloseCode.UNSUPPORTED_VERSION, retryable: false, lip1: null },
  /** handshake: not completed in time (close 4408) */
  AUTH_HANDSHAKE_TIMEOUT: { close: CloseCode.HANDSHAKE_TIMEOUT, retryable: true, lip1: null },
  // a heartbeat whose HMAC does not verify with the session secret (PROTOCOL.md §8)
  /** a heartbeat whose MAC does not verify with the session secret */
  AUTH_BAD_MAC: { close: CloseCode.BAD_SIGNATURE, retryable: false, lip1: null },
  // WebSocket transport (PROTOCOL.md §6)
  /** plain ws on a non-loopback address without `allowInsecure` */
  TRANSPORT_INSECURE: { close: null, retryable: false, lip1: null },
  /** the channel server could not listen */
  TRANSPORT_LISTEN_FAILED: { close: null, retryable: true, lip1: null },
  /** dialing a peer (or the admin routes) failed */
  TRANSPORT_CONNECT_FAILED: { close: null, retryable: true, lip1: null },
  /** a binary WebSocket frame (close 1003) */
  TRANSPORT_UNSUPPORTED_DATA: { close: CloseCode.UNSUPPORTED_DATA, retryable: false, lip1: null },
  /** a second connection for the same VASP pair (close 4409) */
  TRANSPORT_DUPLICATE_CONNECTION: { close: CloseCode.DUPLICATE_CONNECTION, retryable: true, lip1: null },
  // several replicas of one VASP: another replica owns this channel (try it, or later)
  /** several replicas: the replica dialed does not own this channel now (close 4421); retried with backoff */
  TRANSPORT_NOT_OWNER: { close: CloseCode.NOT_OWNER, retryable: true, lip1: null },
  /** the connection is closed */
  TRANSPORT_CLOSED: { close: null, retryable: true, lip1: null },
  /** the peer is shutting down (close 1001) */
  TRANSPORT_GOING_AWAY: { close: CloseCode.GOING_AWAY, retryable: true, lip1: null },
  /** our own state failed while serving a connection (close 1011) */
  TRANSPORT_INTERNAL_ERROR: { close: CloseCode.INTERNAL_ERROR, retryable: true, lip1: null },
  // resync (PROTOCOL.md §7): a refused history is answered with a SyncError frame, never stored
  /** resync: a request or response in a peer's history does not verify; nothing of it stored */
  SYNC_BAD_SIGNATURE: { close: null, retryable: false, lip1: null },
  /** resync: a gap, a re-ordered chain, no create, or a start this node does not hold */
  SYNC_BROKEN_CHAIN: { close: null, retryable: false, lip1: null },
  /** resync: an undecodable entry, a stranger as proposer, a repeated cid, a payment-rule violation */
  SYNC_INVALID_HISTORY: { close: null, retryable: false, lip1: null },
  /** network read: the peer does not hold that object */
  SYNC_UNKNOWN_OBJECT: { close: null, retryable: false, lip1: null },
  /**
   * one object's signed history does not fit in a frame: the peer sends a `too_large` entry instead, nothing
   * of it is stored, the run ends `partial` (raise `maxFrameBytes` on both nodes)
   */
  SYNC_HISTORY_TOO_LARGE: { close: null, retryable: false, lip1: null },
  /** resync: neither chain contains the other's head (a fork); resolved by the protocol server's branch */
  SYNC_FORK: { close: null, retryable: true, lip1: null },
  /** resync: my command read a branch that lost the fork; it can never complete */
  SYNC_FORK_LOST: { close: null, retryable: false, lip1: null },
  /** resync: the connection closed during the run (it runs again later) */
  SYNC_ABORTED: { close: null, retryable: true, lip1: null },
  /** resync: the peer did not answer in time (the run runs again later) */
  SYNC_TIMEOUT: { close: null, retryable: true, lip1: null },
  /** restore: the peer's hello does not name `restore`, or this node's store cannot page closed objects (PROTOCOL.md §7.6) */
  SYNC_RESTORE_UNSUPPORTED: { close: null, retryable: false, lip1: null },
  /** restore: three restore runs in a row settled nothing (or, on the node being restored, no run came for 2 minutes after an unfinished one); the restore waits for the next connection (PROTOCOL.md §7.6) */
  SYNC_RESTORE_STALLED: { close: null, retryable: true, lip1: null },
  // health (PROTOCOL.md §8): a connection from a store epoch the peer has since replaced (a zombie)
  /**
   * zombie fencing: a peer presents an epoch older than one already seen (close 4412; `parley peer reset-
   * epoch` after a hostile hello)
   */
  HEALTH_SUPERSEDED_EPOCH: { close: CloseCode.SUPERSEDED_EPOCH, retryable: false, lip1: null },
  // `parley peer reset-epoch`: the epoch is not one this node replaced for that peer
  /** `parley peer reset-epoch`: the epoch is not one this node replaced for that peer (nothing written) */
  HEALTH_EPOCH_UNKNOWN: { close: null, retryable: false, lip1: null },
  // a failure of this node's own that carries no code (a bug, an error from a library)
  /**
   * an unexpected failure of this node's own, not caused by the request (a bug, an uncoded error from a
   * library): HTTP 500, and the code of such a failure in events and logs
   */
  INTERNAL: { close: null, retryable: false, lip1: null },
  // configuration and identities
  /** the configuration is refused, with every problem listed (docs/configuration.md; exit 2) */
  CONFIG_INVALID: { close: null, retryable: false, lip1: null },
  /** not a valid account address (bech32, LIP-5) */
  ADDRESS_INVALID: { close: null, retryable: false, lip1: null },
  /** not a valid Ed25519 key (32 bytes, hex) */
  KEY_INVALID: { close: null, retryable: false, lip1: null },
  // `parley demo --dir`: a folder the demo did not make (it deletes only what it made)
  /**
   * `parley demo --dir`: a non-empty folder the demo did not make (no `.parley-demo.json` marker), or a file
   * in the way; nothing changed (exit 2)
   */
  DEMO_DIR_REFUSED: { close: null, retryable: false, lip1: null },
  // store
  /** the store cannot be reached or cannot write now (a full disk, a lost database connection); retried */
  STORE_UNAVAILABLE: { close: CloseCode.INTERNAL_ERROR, retryable: true, lip1: null },
  /** the database schema could not be brought up to date at open */
  STORE_MIGRATION_FAILED: { close: null, retryable: false, lip1: null },
  /** the store holds something it never should (a broken chain in the signed log): stop and investigate */
  STORE_INVARIANT_BROKEN: { close: CloseCode.INTERNAL_ERROR, retryable: false, lip1: null },
  /** a (peer, cid) already in the signed log */
  STORE_DUPLICATE_COMMAND: { close: null, retryable: false, lip1: null },
  /** a version would be consumed twice (no forks inside one store) */
  STORE_VERSION_CONFLICT: { close: null, retryable: false, lip1: null },
  // a write of a channel this replica does not own (any more): another replica took its lease
  /** several replicas: a write of a channel this replica does not own (any more); nothing of it is stored */
  STORE_LEASE_LOST: { close: null, retryable: false, lip1: null },
  /** a record the store refuses */
  STORE_INVALID_INPUT: { close: null, retryable: false, lip1: null },
  /** the store is closed */
  STORE_CLOSED: { close: null, retryable: false, lip1: null },
  // business layer (src/business)
  /** the business aborts a payment with an abort code */
  BUSINESS_FORCE_ABORT: { close: null, retryable: false, lip1: null },
  /** the business rejects a recipient signature */
  BUSINESS_VALIDATION_FAILURE: { close: null, retryable: false, lip1: 'payment_wrong_recipient_signature' },
  // my business refuses a channel to this peer (for now): its hello is refused with 4403
  /**
   * my business refuses a channel to this peer for now (`openChannelTo` threw `BusinessNotAuthorized`, asked
   * at each hello, dial and LIP-1 HTTP request): its hello is refused with 4403, nothing is dialed, a LIP-1
   * HTTP request gets 401
   */
  BUSINESS_NOT_AUTHORIZED: { close: CloseCode.UNKNOWN_PEER, retryable: false, lip1: null },
  /** a payment request with invalid fields (admin/CLI `pay`) */
  BUSINESS_INVALID_INPUT: { close: null, retryable: false, lip1: null },
  /** the business produced a version the rules forbid */
  BUSINESS_INVALID_NEXT_VERSION: { close: null, retryable: false, lip1: null },
  /** the back office (webhook business) gave no valid answer in time; the step waits and is asked again (docs/backoffice.md) */
  BUSINESS_BACKOFFICE_UNREACHABLE: { close: null, retryable: true, lip1: null },
  /** `GET /admin/events` on a node that records no events (HTTP 404; config `events.enabled` or `events.url`) */
  EVENTS_DISABLED: { close: null, retryable: false, lip1: null },
  // admin routes (src/admin): no token, or not this node's
  /** an admin request without this run's token, or with another, or with an API key that is unknown, revoked or wrong (HTTP 401) */
  ADMIN_UNAUTHORIZED: { close: null, retryable: false, lip1: null },
  /** an admin request from off this machine without an API key, or with a key that lacks the route's scope (HTTP 403; docs/api.md) */
  ADMIN_FORBIDDEN: { close: null, retryable: false, lip1: null },
  /** `GET /admin/payments/<ref>`, `parley payment show`: no payment with that reference id (HTTP 404) */
  PAYMENT_UNKNOWN: { close: null, retryable: false, lip1: null },
  /** `parley apikey revoke`: no API key with that id (HTTP 404) */
  API_KEY_UNKNOWN: { close: null, retryable: false, lip1: null },
  /** `parley pay --wait`: no final response within `--timeout`; the create is durable and is sent until the peer answers (HTTP 202, exit 1) */
  PAY_WAIT_TIMEOUT: { close: null, retryable: false, lip1: null },
  /** the CLI: the config's node is not running (nothing answers at its address, or another node does) */
  NODE_NOT_RUNNING: { close: null, retryable: false, lip1: null },
  /** `parley start`: another process listens on the config's host and port (`listen.port`, `PARLEY_PORT`) */
  LISTEN_ADDRESS_IN_USE: { close: null, retryable: false, lip1: null },
  // status routes (/healthz, /metrics) from off this machine without the status token
  /**
   * `/healthz`, its history or `/metrics` asked from off this machine without the status token (HTTP 401;
   * `status.token`, `status.allowRemote`)
   */
  STATUS_UNAUTHORIZED: { close: null, retryable: false, lip1: null },
  // HTTP routes: a query parameter that is unknown, repeated or malformed (400)
  /** an HTTP route's query parameter is unknown, repeated or malformed (HTTP 400, with the problems) */
  HTTP_INVALID_QUERY: { close: null, retryable: false, lip1: null },
  /** an HTTP route asked with a method it does not take (HTTP 405, with `Allow`) */
  HTTP_METHOD_NOT_ALLOWED: { close: null, retryable: false, lip1: null },
  // HTTP routes a browser reaches: a Host or Origin naming another site (403, DNS rebinding)
  /**
   * a browser-reachable route asked with a `Host` or `Origin` naming another site (HTTP 403; `allowedHosts`)
   */
  HTTP_HOST_NOT_ALLOWED: { close: null, retryable: false, lip1: null },
} as const satisfies Record<string, { close: CloseCode | null; retryable: boolean; lip1: string | null }>;
export type ErrorCode = keyof typeof ErrorCode;

/** The one error class Parley throws. Tests assert `code`, never the message. */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  constructor(
    readonly code: ErrorCode,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? code, options);
  }
  /** Whether the same operation may succeed when tried again later. */
  get retryable(): boolean {
    return ErrorCode[this.code].retryable;
  }
}

/** Narrows an unknown thrown value to a ParleyError with the given code. */
export function isParleyError(err: unknown, code?: ErrorCode): err is ParleyError {
  return err instanceof ParleyError && (code === undefined || err.code === code);
}
