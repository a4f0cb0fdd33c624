/**
 * The LIP-1 v1 `OffChainErrorCode` catalog, as the reference implementation 0.0.9 defines and
 * emits it (lip1-v1.md §2.4).
 *
 * - `protocol`: the request was not processed; nothing is stored and the same request may
 *   succeed later (`cid` is `null` for `parsing_error` and `invalid_signature`).
 * - `command`: the request was processed and rejected; the failure is stored and the same `cid`
 *   always gets it again.
 * - `abort`: never a response error; business logic puts it in `StatusObject.abort_code`.
 */
export const Lip1ErrorCode = {
  parsing_error: { kind: 'protocol' },
  invalid_signature: { kind: 'protocol' },
  wait: { kind: 'protocol' },
  conflict: { kind: 'protocol' },
  /** Defined by the reference but never emitted: it answers `wait` instead. */
  missing_dependencies: { kind: 'protocol' },
  used_dependencies: { kind: 'command' },
  payment_wrong_structure: { kind: 'command' },
  payment_wrong_actor: { kind: 'command' },
  payment_wrong_status: { kind: 'command' },
  payment_changed_other_actor: { kind: 'command' },
  payment_invalid_libra_address: { kind: 'command' },
  payment_wrong_recipient_signature: { kind: 'command' },
  payment_dependency_error: { kind: 'command' },
  payment_insufficient_funds: { kind: 'abort' },
  payment_vasp_error: { kind: 'abort' },
  payment_invalid_libra_subaddress: { kind: 'abort' },
} as const satisfies Record<string, { kind: Lip1ErrorKind }>;
export type Lip1ErrorCode = keyof typeof Lip1ErrorCode;

/** How a LIP-1 error code is used: protocol error, command error, or abort code. */
export type Lip1ErrorKind = 'protocol' | 'command' | 'abort';

/** The LIP-1 codes of one kind. */
export type Lip1ErrorCodeOfKind<TKind extends Lip1ErrorKind> = {
  [K in Lip1ErrorCode]: (typeof Lip1ErrorCode)[K]['kind'] extends TKind ? K : never;
}[Lip1ErrorCode];

/** LIP-1 protocol error codes (never stored). */
export type Lip1ProtocolErrorCode = Lip1ErrorCodeOfKind<'protocol'>;
/** LIP-1 command error codes (stored, permanent for the `cid`). */
export type Lip1CommandErrorCode = Lip1ErrorCodeOfKind<'command'>;
/** LIP-1 abort codes (only in `StatusObject.abort_code`). */
export type Lip1AbortCode = Lip1ErrorCodeOfKind<'abort'>;

/**
 * The literal `abort_code` the reference's processor writes when it follows the other side's
 * abort. It is not an `OffChainErrorCode`.
 */
export const FOLLOW_ABORT_CODE = 'FOLLOW';

/** Whether `code` is one of the LIP-1 v1 `OffChainErrorCode` values. */
export function isLip1ErrorCode(code: unknown): code is Lip1ErrorCode {
  return typeof code === 'string' && Object.hasOwn(Lip1ErrorCode, code);
}

/** The kind of a known LIP-1 code, or `undefined` for an unknown string. */
export function lip1ErrorKind(code: string): Lip1ErrorKind | undefined {
  return isLip1ErrorCode(code) ? Lip1ErrorCode[code].kind : undefined;
}

/**
 * The message the reference puts in `error.message` when none is given:
 * `Unspecified error with code "<code>"`.
 */
export function defaultErrorMessage(code: string): string {
  return `Unspecified error with code "${code}"`;
}
