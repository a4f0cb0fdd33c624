/**
 * The business interface a VASP plugs into Parley: the decisions LIP-1 leaves to each VASP (KYC to
 * provide and to request, the recipient signature, whether an account exists, when to be ready
 * for settlement). It mirrors the reference's `BusinessContext` (lip1-v1.md §5) in camelCase,
 * async where the reference is async.
 *
 * Deliberate differences from the reference:
 * - No `get_my_address`, `is_sender` or `is_recipient`: the processor derives my side from my
 *   channel address and the actors' on-chain addresses (`objects/myRole`), so a business cannot
 *   disagree with the channel about which side it is.
 * - `paymentPreProcessing` receives the payment and who is processing it (there is no command
 *   sequence number in LIP-1 0.0.9 any more); its result is the `ctx` of every later call.
 * - `validateRecipientSignature` may be async (the reference's is sync), so an implementation can
 *   look up the receiver's compliance key.
 */
import { ParleyError } from '../errors.js';
import type { ActorRole } from '../objects/index.js';
import type { KycData, Lip1AbortCode, PaymentObject, PaymentStatus } from '../protocol/index.js';

/** What a business can be asked to provide, as the reference names it with statuses. */
export type KycToProvide = Extract<
  PaymentStatus,
  'needs_kyc_data' | 'soft_match' | 'needs_recipient_signature'
>;

/**
 * The KYC level a business requests from the other side. `none` means nothing to request;
 * any other value becomes my status.
 */
export type KycLevel = Extract<
  PaymentStatus,
  'none' | 'needs_kyc_data' | 'needs_recipient_signature' | 'soft_match' | 'pending_review'
>;

/** The KYC levels a business may request, for run-time checks of what it returns. */
export const KYC_LEVELS: readonly KycLevel[] = [
  'none',
  'needs_kyc_data',
  'needs_recipient_signature',
  'soft_match',
  'pending_review',
];

/** Who is processing a payment: given to {@link BusinessContext.paymentPreProcessing}. */
export interface PaymentProcessingInfo {
  /** My channel address (bech32, zero subaddress). */
  readonly me: string;
  /** The counterparty's channel address (bech32, zero subaddress). */
  readonly other: string;
  /** My side of the payment. */
  readonly role: ActorRole;
}

/**
 * A fork of one of my payments, resolved against me: given to
 * {@link BusinessContext.paymentForkLost}.
 */
export interface PaymentForkLost {
  /** The counterparty's channel address (bech32, zero subaddress). */
  readonly other: string;
  readonly referenceId: string;
  /** The last version both branches shared; null when the whole object was replaced. */
  readonly keep: string | null;
  /** The commands (cids) of the losing branch, after `keep`: no longer in the signed log. */
  readonly droppedCids: readonly string[];
  /** My commands that read the losing branch: they ended with `SYNC_FORK_LOST`. */
  readonly droppedPending: readonly string[];
  /** The payment at the head of the winning branch, as this node now holds it. */
  readonly payment: PaymentObject | undefined;
}

/**
 * The decisions of one VASP about its payments (`BusinessContext` in the reference, §5).
 *
 * Every method except {@link BusinessContext.validateRecipientSignature} and
 * {@link BusinessContext.openChannelTo} runs while the processor computes my next version of a
 * payment (lip1-v1.md §3.7) and receives the per-run context `TCtx` made by
 * {@link BusinessContext.paymentPreProcessing}. The payment passed is the version being built,
 * deeply frozen: it is read-only (an attempt to change it throws, which aborts the payment with
 * `payment_vasp_error`); a business that wants a changed object copies it.
 *
 * Any method may throw {@link BusinessForceAbort} to abort the payment with a LIP-1 abort code;
 * any other error aborts it with `payment_vasp_error`.
 *
 * @typeParam TCtx - the per-run context, e.g. a database transaction or cached user record.
 */
export interface BusinessContext<TCtx = unknown> {
  /**
   * Whether to open a channel to `other` (bech32, zero subaddress). Throw
   * {@link BusinessNotAuthorized} to refuse; the reference answers HTTP 401. Optional: when
   * absent every peer the node is configured with is accepted.
   */
  openChannelTo?(other: string): void | Promise<void>;

  /**
   * A payment forked (after a state loss, both sides extended the same version) and the
   * counterparty's branch won (it is the protocol server, PROTOCOL.md §7.4): what I had decided
   * after `keep` is gone, and my pending commands on it will never complete. Called once per
   * fork, after the winning branch is stored; the next step on the payment is then asked of the
   * other methods as usual. Optional (the fork is also `fork_lost` on the node's `events$`); an
   * error it throws is reported as `business_error` and changes nothing.
   */
  paymentForkLost?(fork: PaymentForkLost): void | Promise<void>;

  /** Makes the context passed to every other call of one processing run. */
  paymentPreProcessing(payment: PaymentObject, info: PaymentProcessingInfo): Promise<TCtx>;

  /** Called first in every processing run that may change my side of the payment. */
  paymentInitialProcessing(payment: PaymentObject, ctx: TCtx): Promise<void>;

  /**
   * Called while my status is `none`: throw {@link BusinessForceAbort} (typically
   * `payment_invalid_libra_subaddress`) when my account does not exist.
   */
  checkAccountExistence(payment: PaymentObject, ctx: TCtx): Promise<void>;

  /**
   * Checks the receiver's `recipient_signature` of an incoming command when I am the sender.
   *
   * @throws BusinessValidationFailure when the signature is not acceptable; the command is then
   *   refused with `payment_wrong_recipient_signature`.
   */
  validateRecipientSignature(payment: PaymentObject): void | Promise<void>;

  /** My `recipient_signature` when I am the receiver (dual attestation, lip1-v1.md §2.8). */
  getRecipientSignature(payment: PaymentObject, ctx: TCtx): Promise<string>;

  /** What I provide in this version: my KYC, my additional KYC, the recipient signature. */
  nextKycToProvide(payment: PaymentObject, ctx: TCtx): Promise<ReadonlySet<KycToProvide>>;

  /** What I request from the other side; `none` when I need nothing more. */
  nextKycLevelToRequest(payment: PaymentObject, ctx: TCtx): Promise<KycLevel>;

  /** My `kyc_data`. */
  getExtendedKyc(payment: PaymentObject, ctx: TCtx): Promise<KycData>;

  /** My `additional_kyc_data` (asked for by a `soft_match` of the other side). */
  getAdditionalKyc(payment: PaymentObject, ctx: TCtx): Promise<KycData>;

  /** Whether I am ready for settlement. Must be monotone: once `true`, always `true`. */
  readyForSettlement(payment: PaymentObject, ctx: TCtx): Promise<boolean>;
}

/**
 * Thrown by a business to abort a payment: my status becomes `abort` with `abortCode` and the
 * error message as `abort_message` (`BusinessForceAbort` in the reference).
 */
export class BusinessForceAbort extends ParleyError {
  /**
   * @param abortCode - the LIP-1 abort code written to `abort_code`.
   * @param message - written to `abort_message`; the peer sees it.
   */
  constructor(
    readonly abortCode: Lip1AbortCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super('BUSINESS_FORCE_ABORT', message, options);
  }
}

/**
 * Thrown by {@link BusinessContext.validateRecipientSignature} when a recipient signature is not
 * acceptable (`BusinessValidationFailure` in the reference).
 */
export class BusinessValidationFailure extends ParleyError {
  constructor(message?: string, options?: ErrorOptions) {
    super('BUSINESS_VALIDATION_FAILURE', message, options);
  }
}

/**
 * Thrown by {@link BusinessContext.openChannelTo} to refuse a peer (`BusinessNotAuthorized` in
 * the reference, answered with HTTP 401 there).
 */
export class BusinessNotAuthorized extends ParleyError {
  constructor(message?: string, options?: ErrorOptions) {
    super('BUSINESS_NOT_AUTHORIZED', message, options);
  }
}
