/**
 * The payment processor: after a command of the other VASP committed, it asks the business what
 * changes on my side and builds my next version of the payment (lip1-v1.md §3.7, the reference's
 * `PaymentProcessor.payment_process_async`); and it runs the business check of an incoming command
 * (`check_signatures`).
 *
 * Deliberate differences from the reference, each making an outcome defined or safer:
 * - The business is not called at all when I have nothing left to do (I aborted, or both sides
 *   are ready); the reference called `payment_pre_processing` / `payment_initial_processing`
 *   first, and an error there could only produce an invalid transition.
 * - What the business returns is checked before it goes on the wire: KYC objects against the
 *   `KycData` schema, the signature is a string, a requested level is a {@link KycLevel}, and only
 *   the receiver may add `recipient_signature`. A violation aborts with `payment_vasp_error`, as
 *   any other business error does (the reference raised inside `StructureChecker` the same way).
 * - The result is checked with the same payment rules the peer applies (`checkPaymentCommand`,
 *   origin = me); an invalid version is thrown, never sent (the reference's `RuntimeError`).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ParleyError } from '../errors.js';
import {
  type ActorRole,
  canChangeStatus,
  explainPaymentCommand,
  myRole,
  otherRole,
  withActor,
  withStatus,
} from '../objects/index.js';
import {
  channelAddress,
  FOLLOW_ABORT_CODE,
  jsonEqual,
  KycData,
  type Lip1CommandErrorCode,
  lip1ErrorKind,
  type PaymentObject,
  type PaymentStatus,
  type StatusObject,
} from '../protocol/index.js';
import {
  type BusinessContext,
  BusinessForceAbort,
  BusinessValidationFailure,
  KYC_LEVELS,
  type KycLevel,
  type PaymentProcessingInfo,
} from './business-context.js';

/** The `abort_message` written when following the other side's abort (as the reference words it). */
export const FOLLOW_ABORT_MESSAGE = 'Follows the abort from the other side.';

/** My statuses in which KYC is still requested and provided (§3.7 step 4). */
const KYC_EXCHANGE_STATUSES: ReadonlySet<PaymentStatus> = new Set<PaymentStatus>([
  'none',
  'needs_kyc_data',
  'needs_recipient_signature',
  'soft_match',
]);

/** What {@link nextPaymentVersion} takes. */
export interface NextPaymentVersionInput<TCtx> {
  /** The latest version of the payment, just committed (a command of the other VASP). */
  readonly payment: PaymentObject;
  /** My channel address (bech32; any subaddress is ignored). */
  readonly me: string;
  /** My business decisions. */
  readonly business: BusinessContext<TCtx>;
  /**
   * Makes the reference quoted in the `abort_message` of a `payment_vasp_error` abort, so the
   * peer's report can be matched with my logs.
   * @default 16 random bytes as hex, as the reference does
   */
  readonly errorRef?: () => string;
  /**
   * Told about each unexpected business error that aborted a payment with `payment_vasp_error`,
   * with the reference quoted to the peer. Pass the node's logger here; an error it throws is ignored.
   * @default nothing is reported
   */
  readonly onUnexpectedError?: (error: unknown, ref: string) => void;
}

/** My version in progress: the payment with my additions, and my new status. */
interface Draft {
  readonly payment: PaymentObject;
  readonly status: StatusObject;
}

function defaultErrorRef(): string {
  return randomBytes(16).toString('hex');
}

/** Sets a write-once member: a first write, or the same value again (`StructureChecker` semantics). */
function writeOnce<T>(current: T | undefined, value: T, path: string): T {
  if (current !== undefined && !jsonEqual(current, value)) {
    throw new ParleyError('BUSINESS_INVALID_NEXT_VERSION', `${path} is write-once and already set`);
  }
  return value;
}

function checkedLevel(level: unknown): KycLevel {
  if (!(KYC_LEVELS as readonly unknown[]).includes(level)) {
    throw new ParleyError('BUSINESS_INVALID_NEXT_VERSION', `nextKycLevelToRequest returned ${String(level)}`);
  }
  return level as KycLevel;
}

/** Freezes `value` and everything it holds (subtrees already frozen are skipped). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Steps 2–6 of §3.7: what the business changes on my side. Throws what the business throws. */
async function runBusiness<TCtx>(
  payment: PaymentObject,
  info: PaymentProcessingInfo,
  business: BusinessContext<TCtx>,
): Promise<Draft> {
  const { role } = info;
  // The business sees the draft deeply frozen (one copy per run, not one per call: a payment
  // with KYC data costs tens of microseconds to clone, and a run makes up to eight calls).
  let draft = deepFreeze(structuredClone(payment));
  const view = (): PaymentObject => draft;

  const ctx = await business.paymentPreProcessing(view(), info);
  await business.paymentInitialProcessing(view(), ctx);
  if (payment[otherRole(role)].status.status === 'abort') {
    return {
      payment: draft,
      status: { status: 'abort', abort_code: FOLLOW_ABORT_CODE, abort_message: FOLLOW_ABORT_MESSAGE },
    };
  }

  let current = payment[role].status.status;
  if (current === 'none') await business.checkAccountExistence(view(), ctx);
  if (KYC_EXCHANGE_STATUSES.has(current)) {
    const level = checkedLevel(await business.nextKycLevelToRequest(view(), ctx));
    if (level !== 'none') current = level;
    const provide = await business.nextKycToProvide(view(), ctx);
    if (provide.has('needs_kyc_data')) {
      const kyc = KycData.parse(await business.getExtendedKyc(view(), ctx));
      draft = deepFreeze(
        withActor(draft, role, { kyc_data: writeOnce(draft[role].kyc_data, kyc, `${role}.kyc_data`) }),
      );
    }
    if (provide.has('soft_match')) {
      const kyc = KycData.parse(await business.getAdditionalKyc(view(), ctx));
      const path = `${role}.additional_kyc_data`;
      draft = deepFreeze(
        withActor(draft, role, {
          additional_kyc_data: writeOnce(draft[role].additional_kyc_data, kyc, path),
        }),
      );
    }
    if (provide.has('needs_recipient_signature')) {
      if (role !== 'receiver') {
        throw new ParleyError('BUSINESS_INVALID_NEXT_VERSION', 'only the receiver signs');
      }
      const signature = z.string().parse(await business.getRecipientSignature(view(), ctx));
      draft = Object.freeze({
        ...draft,
        recipient_signature: writeOnce(draft.recipient_signature, signature, 'recipient_signature'),
      });
    }
  }
  if (current !== 'ready_for_settlement' && (await business.readyForSettlement(view(), ctx)) === true) {
    current = 'ready_for_settlement';
  }
  return { payment: draft, status: { status: current } };
}

/** Step 7 of §3.7: the abort that replaces whatever the business had added. */
function abortFor(
  error: unknown,
  input: Pick<NextPaymentVersionInput<unknown>, 'errorRef' | 'onUnexpectedError'>,
): StatusObject {
  if (error instanceof BusinessForceAbort && lip1ErrorKind(error.abortCode) === 'abort') {
    return { status: 'abort', abort_code: error.abortCode, abort_message: error.message };
  }
  const ref = (input.errorRef ?? defaultErrorRef)();
  try {
    input.onUnexpectedError?.(error, ref);
  } catch {
    // A failing logger must not stop the abort from being sent.
  }
  return {
    status: 'abort',
    abort_code: 'payment_vasp_error',
    abort_message: `An unexpected exception was raised by the VASP business logic. Ref: ${ref}`,
  };
}

/**
 * My next version of a payment after a command of the other VASP committed, or `null` when
 * nothing changes on my side (lip1-v1.md §3.7):
 *
 * 1. nothing to do when my status is `abort` or both sides are `ready_for_settlement`;
 * 2. when the other side aborted, I abort with `abort_code` `FOLLOW`;
 * 3. while my status is `none`, the business checks my account exists;
 * 4. while my status is `none`, `needs_kyc_data`, `needs_recipient_signature` or `soft_match`,
 *    the business's requested KYC level becomes my status (unless `none`), and
 * 5. I add what it provides: `kyc_data`, `additional_kyc_data`, `recipient_signature`;
 * 6. unless ready (or aborting), I become `ready_for_settlement` when the business says so;
 * 7. a {@link BusinessForceAbort} aborts with its code and message, any other error with
 *    `payment_vasp_error`; either way nothing else the business added is kept;
 * 8. the new version must pass `canChangeStatus` and `checkPaymentCommand` with origin = me.
 *
 * The result is the full payment record to send in my next `PaymentCommand`.
 *
 * @throws ParleyError `BUSINESS_INVALID_INPUT` when `me` is not a party of the payment;
 *   `ADDRESS_INVALID` when `me` or an actor address does not decode.
 * @throws ParleyError `BUSINESS_INVALID_NEXT_VERSION` when no valid version exists, e.g. the
 *   business failed while I was already `ready_for_settlement` (LIP-1 forbids aborting then).
 */
export async function nextPaymentVersion<TCtx>(
  input: NextPaymentVersionInput<TCtx>,
): Promise<PaymentObject | null> {
  const { payment, business } = input;
  const me = channelAddress(input.me);
  const role: ActorRole | undefined = myRole(payment, me);
  if (role === undefined) {
    throw new ParleyError(
      'BUSINESS_INVALID_INPUT',
      `${me} is not a party of payment ${payment.reference_id}`,
    );
  }
  const other = channelAddress(payment[otherRole(role)].address);
  const mine = payment[role].status.status;
  const theirs = payment[otherRole(role)].status.status;
  if (mine === 'abort' || (mine === 'ready_for_settlement' && theirs === 'ready_for_settlement')) return null;

  let draft: Draft;
  try {
    draft = await runBusiness(payment, { me, other, role }, business);
  } catch (error) {
    draft = { payment: structuredClone(payment), status: abortFor(error, input) };
  }

  if (!canChangeStatus(mine, draft.status.status, theirs)) {
    throw new ParleyError(
      'BUSINESS_INVALID_NEXT_VERSION',
      `invalid ${role} status transition ${mine} -> ${draft.status.status} (other side ${theirs})`,
    );
  }
  const next = withStatus(draft.payment, role, draft.status);
  const violation = explainPaymentCommand({
    me,
    other,
    origin: me,
    previous: payment,
    next,
    referenceId: payment.reference_id,
  });
  if (violation !== null) {
    throw new ParleyError('BUSINESS_INVALID_NEXT_VERSION', `${violation.code}: ${violation.message}`);
  }
  return jsonEqual(next, payment) ? null : next;
}

/** What {@link validateIncoming} takes: the command as the channel sees it, plus me and my business. */
export interface ValidateIncomingInput<TCtx> {
  /** The full payment record the incoming command writes. */
  readonly payment: PaymentObject;
  /** The version it reads; `undefined` for a create. Not used by the reference's checks. */
  readonly previous?: PaymentObject | undefined;
  /** Who proposed the command. @default the other VASP */
  readonly origin?: string | undefined;
  /** My channel address (bech32). */
  readonly me: string;
  /** My business decisions. */
  readonly business: BusinessContext<TCtx>;
}

/**
 * The business check of an incoming command, run after the payment rules accepted it
 * (the reference's `check_signatures`): when I am the sender and the payment carries a
 * `recipient_signature`, the business validates it. Commands I proposed are not checked.
 *
 * @returns `payment_wrong_recipient_signature` when the business throws
 *   {@link BusinessValidationFailure}; `payment_wrong_actor` when I am not a party (the payment
 *   rules reject that first); otherwise `null`.
 * @throws whatever else the business throws, and ParleyError `ADDRESS_INVALID` when `me` or
 *   `origin` does not decode: the command could not be judged.
 */
export async function validateIncoming<TCtx>(
  input: ValidateIncomingInput<TCtx>,
): Promise<Lip1CommandErrorCode | null> {
  const me = channelAddress(input.me);
  if (input.origin !== undefined && channelAddress(input.origin) === me) return null;
  const role = myRole(input.payment, me);
  if (role === undefined) return 'payment_wrong_actor';
  if (role !== 'sender' || input.payment.recipient_signature === undefined) return null;
  try {
    await input.business.validateRecipientSignature(deepFreeze(structuredClone(input.payment)));
  } catch (error) {
    if (error instanceof BusinessValidationFailure) return 'payment_wrong_recipient_signature';
    throw error;
  }
  return null;
}
