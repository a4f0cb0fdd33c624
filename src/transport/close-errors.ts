/**
 * Close codes ↔ error codes at the transport edge: which close code a failure sends, and which
 * error a close received during the handshake means (PROTOCOL.md §6).
 */
import { ErrorCode, isParleyError, ParleyError } from '../errors.js';
import { CloseCode, closeCodeName, isSendableCloseCode } from '../protocol/index.js';

/** The error a close code received from the peer stands for (the inverse of {@link closeCodeFor}). */
const ERROR_FOR_CLOSE: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [CloseCode.GOING_AWAY, 'TRANSPORT_GOING_AWAY'],
  [CloseCode.UNSUPPORTED_DATA, 'TRANSPORT_UNSUPPORTED_DATA'],
  [CloseCode.INVALID_PAYLOAD, 'PROTOCOL_MALFORMED_FRAME'],
  [CloseCode.FRAME_TOO_LARGE, 'PROTOCOL_FRAME_TOO_LARGE'],
  [CloseCode.INTERNAL_ERROR, 'TRANSPORT_INTERNAL_ERROR'],
  [CloseCode.BAD_FRAME, 'PROTOCOL_MALFORMED_FRAME'],
  [CloseCode.BAD_SIGNATURE, 'AUTH_BAD_SIGNATURE'],
  [CloseCode.UNKNOWN_PEER, 'AUTH_UNKNOWN_PEER'],
  [CloseCode.HANDSHAKE_TIMEOUT, 'AUTH_HANDSHAKE_TIMEOUT'],
  [CloseCode.DUPLICATE_CONNECTION, 'TRANSPORT_DUPLICATE_CONNECTION'],
  [CloseCode.REPLAYED_HELLO, 'AUTH_REPLAYED_HELLO'],
  [CloseCode.STALE_HELLO, 'AUTH_STALE_HELLO'],
  [CloseCode.SUPERSEDED_EPOCH, 'HEALTH_SUPERSEDED_EPOCH'],
  [CloseCode.UNSUPPORTED_VERSION, 'AUTH_UNSUPPORTED_VERSION'],
  [CloseCode.NOT_OWNER, 'TRANSPORT_NOT_OWNER'],
]);

/**
 * The error for a connection that the peer (or the network) closed before the handshake
 * completed: the code the close stands for, else `TRANSPORT_CLOSED`.
 */
export function errorForClose(code: number, reason: string): ParleyError {
  const name = closeCodeName(code) ?? 'unknown';
  const text = `connection closed during the handshake: ${code} ${name}${reason === '' ? '' : ` (${reason})`}`;
  return new ParleyError(ERROR_FOR_CLOSE.get(code) ?? 'TRANSPORT_CLOSED', text);
}

/**
 * The close code to send for a failure: the catalog's `close` for a ParleyError that has one,
 * `1011 INTERNAL_ERROR` for anything else (a bug or an unexpected failure of our own).
 */
export function closeCodeFor(err: unknown): number {
  if (isParleyError(err)) {
    const code = ErrorCode[err.code].close;
    if (code !== null && isSendableCloseCode(code)) return code;
  }
  return CloseCode.INTERNAL_ERROR;
}

/**
 * Whether `err` is a deliberate refusal of a connection (a ParleyError whose catalog close code is
 * one of Parley's 4xxx: not the owner, the business refuses this peer, …), as opposed to a failure
 * of this node's own (sent as 1011).
 */
export function isRefusal(err: unknown): err is ParleyError {
  return isParleyError(err) && (ErrorCode[err.code].close ?? 0) >= 4000;
}

/** Wraps anything thrown into a ParleyError (`fallback` code for foreign errors, kept as `cause`). */
export function asParleyError(err: unknown, fallback: ErrorCode, message: string): ParleyError {
  return isParleyError(err) ? err : new ParleyError(fallback, message, { cause: err });
}

const MAX_REASON_BYTES = 123;

/** A close reason that fits a close frame: at most 123 UTF-8 bytes, cut on a character boundary. */
export function closeReason(text: string): string {
  if (Buffer.byteLength(text, 'utf8') <= MAX_REASON_BYTES) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > MAX_REASON_BYTES) break;
    out += ch;
    bytes += size;
  }
  return out;
}
