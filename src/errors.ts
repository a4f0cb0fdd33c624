/**
 * The product's error catalog. Every failure Parley reports carries one of these codes.
 *
 * Codes are SCREAMING_SNAKE with a concept prefix; a retired code is never reused.
 * `close` is the WebSocket close code used when the error is fatal for a connection
 * (see `src/protocol/PROTOCOL.md`); `null` means the error is answered in-band.
 * `lip1` is the LIP-1 v1 wire error code sent to a peer, when one applies.
 */
export const ErrorCode = {
  // protocol: frames that cannot be accepted
  PROTOCOL_FRAME_TOO_LARGE: { close: 1009, retryable: false, lip1: 'parsing_error' },
  PROTOCOL_NOT_JWS: { close: 4400, retryable: false, lip1: 'invalid_signature' },
  PROTOCOL_BAD_SIGNATURE: { close: 4401, retryable: false, lip1: 'invalid_signature' },
  PROTOCOL_MALFORMED_FRAME: { close: 4400, retryable: false, lip1: 'parsing_error' },
  PROTOCOL_CID_CONFLICT: { close: null, retryable: false, lip1: 'conflict' },
  PROTOCOL_WAIT: { close: null, retryable: true, lip1: 'wait' },
  // command errors: final, stored, answered with the LIP-1 code
  COMMAND_USED_DEPENDENCIES: { close: null, retryable: false, lip1: 'used_dependencies' },
  COMMAND_REJECTED: { close: null, retryable: false, lip1: null },
  // local sending side
  CHANNEL_DEPENDENCY_UNAVAILABLE: { close: null, retryable: true, lip1: null },
  CHANNEL_INVALID_COMMAND: { close: null, retryable: false, lip1: null },
  CHANNEL_UNKNOWN_RESPONSE: { close: null, retryable: false, lip1: null },
  // the channel closed before a command's final response (the command stays in the outbox)
  CHANNEL_CLOSED: { close: null, retryable: true, lip1: null },
  // the operator abandoned a command of mine (`parley command abandon`): ended here, never resent
  COMMAND_ABANDONED: { close: null, retryable: false, lip1: null },
  // `parley command abandon`: no command of mine with this cid, or it already has its final outcome
  COMMAND_UNKNOWN: { close: null, retryable: false, lip1: null },
  COMMAND_ALREADY_FINAL: { close: null, retryable: false, lip1: null },
  // channel handshake: mutual authentication (PROTOCOL.md §5)
  AUTH_UNKNOWN_PEER: { close: 4403, retryable: false, lip1: null },
  AUTH_BAD_SIGNATURE: { close: 4401, retryable: false, lip1: null },
  AUTH_REPLAYED_HELLO: { close: 4410, retryable: true, lip1: null },
  AUTH_STALE_HELLO: { close: 4411, retryable: true, lip1: null },
  AUTH_UNSUPPORTED_VERSION: { close: 4426, retryable: false, lip1: null },
  AUTH_HANDSHAKE_TIMEOUT: { close: 4408, retryable: true, lip1: null },
  // a heartbeat whose HMAC does not verify with the session secret (PROTOCOL.md §8)
  AUTH_BAD_MAC: { close: 4401, retryable: false, lip1: null },
  // WebSocket transport (PROTOCOL.md §6)
  TRANSPORT_INSECURE: { close: null, retryable: false, lip1: null },
  TRANSPORT_LISTEN_FAILED: { close: null, retryable: true, lip1: null },
  TRANSPORT_CONNECT_FAILED: { close: null, retryable: true, lip1: null },
  TRANSPORT_UNSUPPORTED_DATA: { close: 1003, retryable: false, lip1: null },
  TRANSPORT_DUPLICATE_CONNECTION: { close: 4409, retryable: true, lip1: null },
  // several replicas of one VASP: another replica owns this channel (try it, or later)
  TRANSPORT_NOT_OWNER: { close: 4421, retryable: true, lip1: null },
  TRANSPORT_CLOSED: { close: null, retryable: true, lip1: null },
  TRANSPORT_GOING_AWAY: { close: 1001, retryable: true, lip1: null },
  TRANSPORT_INTERNAL_ERROR: { close: 1011, retryable: true, lip1: null },
  // resync (PROTOCOL.md §7): a refused history is answered with a SyncError frame, never stored
  SYNC_BAD_SIGNATURE: { close: null, retryable: false, lip1: null },
  SYNC_BROKEN_CHAIN: { close: null, retryable: false, lip1: null },
  SYNC_INVALID_HISTORY: { close: null, retryable: false, lip1: null },
  SYNC_UNKNOWN_OBJECT: { close: null, retryable: false, lip1: null },
  SYNC_HISTORY_TOO_LARGE: { close: null, retryable: false, lip1: null },
  SYNC_FORK: { close: null, retryable: true, lip1: null },
  SYNC_FORK_LOST: { close: null, retryable: false, lip1: null },
  SYNC_ABORTED: { close: null, retryable: true, lip1: null },
  SYNC_TIMEOUT: { close: null, retryable: true, lip1: null },
  // health (PROTOCOL.md §8): a connection from a store epoch the peer has since replaced (a zombie)
  HEALTH_SUPERSEDED_EPOCH: { close: 4412, retryable: false, lip1: null },
  // `parley peer reset-epoch`: the epoch is not one this node replaced for that peer
  HEALTH_EPOCH_UNKNOWN: { close: null, retryable: false, lip1: null },
  // configuration and identities
  CONFIG_INVALID: { close: null, retryable: false, lip1: null },
  ADDRESS_INVALID: { close: null, retryable: false, lip1: null },
  KEY_INVALID: { close: null, retryable: false, lip1: null },
  // `parley demo --dir`: a folder the demo did not make (it deletes only what it made)
  DEMO_DIR_REFUSED: { close: null, retryable: false, lip1: null },
  // store
  STORE_UNAVAILABLE: { close: 1011, retryable: true, lip1: null },
  STORE_MIGRATION_FAILED: { close: null, retryable: false, lip1: null },
  STORE_INVARIANT_BROKEN: { close: 1011, retryable: false, lip1: null },
  STORE_DUPLICATE_COMMAND: { close: null, retryable: false, lip1: null },
  STORE_VERSION_CONFLICT: { close: null, retryable: false, lip1: null },
  // a write of a channel this replica does not own (any more): another replica took its lease
  STORE_LEASE_LOST: { close: null, retryable: false, lip1: null },
  STORE_INVALID_INPUT: { close: null, retryable: false, lip1: null },
  STORE_CLOSED: { close: null, retryable: false, lip1: null },
  // business layer (src/business)
  BUSINESS_FORCE_ABORT: { close: null, retryable: false, lip1: null },
  BUSINESS_VALIDATION_FAILURE: { close: null, retryable: false, lip1: 'payment_wrong_recipient_signature' },
  // my business refuses a channel to this peer (for now): its hello is refused with 4403
  BUSINESS_NOT_AUTHORIZED: { close: 4403, retryable: false, lip1: null },
  BUSINESS_INVALID_INPUT: { close: null, retryable: false, lip1: null },
  BUSINESS_INVALID_NEXT_VERSION: { close: null, retryable: false, lip1: null },
  // the back office (webhook business) gave no valid answer: the step waits and is asked again
  BUSINESS_BACKOFFICE_UNREACHABLE: { close: null, retryable: true, lip1: null },
  // GET /admin/events on a node that records no events (config events.enabled / events.url)
  EVENTS_DISABLED: { close: null, retryable: false, lip1: null },
  // admin routes (src/admin): no token, or not this node's
  ADMIN_UNAUTHORIZED: { close: null, retryable: false, lip1: null },
  // status routes (/healthz, /metrics) from off this machine without the status token
  STATUS_UNAUTHORIZED: { close: null, retryable: false, lip1: null },
  // HTTP routes: a query parameter that is unknown, repeated or malformed (400)
  HTTP_INVALID_QUERY: { close: null, retryable: false, lip1: null },
  // HTTP routes a browser reaches: a Host or Origin naming another site (403, DNS rebinding)
  HTTP_HOST_NOT_ALLOWED: { close: null, retryable: false, lip1: null },
} as const satisfies Record<string, { close: number | null; retryable: boolean; lip1: string | null }>;
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
