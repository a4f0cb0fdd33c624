/**
 * Payment-object rules of LIP-1 v1 as the reference 0.0.9 applies them in
 * `PaymentProcessor.check_command` (lip1-v1.md §2.4, §3.3 step 6, §4). Pure functions.
 *
 * Deliberate differences from the reference, each making an outcome defined where the
 * reference crashed or was silent:
 * - Changing a write-once field is the command error `payment_wrong_structure` (the reference
 *   raised `StructureException`, i.e. HTTP 500 with nothing stored).
 * - A command carries the full payment record (LIP-1 v1, §2.3). Dropping a write-once field
 *   that the previous version had counts as changing it; the reference would have merged the
 *   partial record into the previous version.
 * - The reference checks only the parties of its own commands; here the same rules run for
 *   either origin, mirrored, so a local check of an outgoing command predicts the peer's answer.
 */
import { ParleyError } from '../errors.js';
import { channelAddress } from '../protocol/address.js';
import { jsonEqual } from '../protocol/json-equal.js';
import type { PaymentActor, PaymentObject, StatusObject } from '../protocol/lip1.js';
import type { Lip1CommandErrorCode } from '../protocol/lip1-errors.js';
import { canChangeStatus, isFinalStatusPair } from './status.js';

/** Which side of a payment an actor is. */
export type ActorRole = 'sender' | 'receiver';

/** Payment members that may be set once and never changed (`WRITE_ONCE` in the reference). */
export const PAYMENT_WRITE_ONCE_FIELDS = [
  'reference_id',
  'original_payment_reference_id',
  'description',
  'action',
  'recipient_signature',
] as const satisfies readonly (keyof PaymentObject)[];

/** Actor members that may be set once and never changed. `status` and `metadata` are updatable. */
export const ACTOR_WRITE_ONCE_FIELDS = [
  'address',
  'kyc_data',
  'additional_kyc_data',
] as const satisfies readonly (keyof PaymentActor)[];

/** The other side of a payment. */
export function otherRole(role: ActorRole): ActorRole {
  return role === 'sender' ? 'receiver' : 'sender';
}

/**
 * Whether a payment is final: both sides `ready_for_settlement`, or either side `abort`.
 * Final payments need no resync; they stay queryable.
 */
export function isFinal(payment: PaymentObject): boolean {
  return isFinalStatusPair(payment.sender.status.status, payment.receiver.status.status);
}

/** Whether a payment is open (not {@link isFinal}). */
export function isOpen(payment: PaymentObject): boolean {
  return !isFinal(payment);
}

function accountOf(address: string): string | undefined {
  try {
    return channelAddress(address);
  } catch {
    return undefined;
  }
}

/**
 * The side whose on-chain account is `address` (any subaddress; compared as the
 * zero-subaddress bech32, hrp included), or `undefined` when it is neither side or an actor
 * address does not decode.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `address` itself does not decode.
 */
export function roleOf(payment: PaymentObject, address: string): ActorRole | undefined {
  const account = channelAddress(address);
  if (accountOf(payment.sender.address) === account) return 'sender';
  if (accountOf(payment.receiver.address) === account) return 'receiver';
  return undefined;
}

/**
 * My side of a payment, given my channel address (alias of {@link roleOf}).
 *
 * @throws ParleyError `ADDRESS_INVALID` when `me` does not decode.
 */
export function myRole(payment: PaymentObject, me: string): ActorRole | undefined {
  return roleOf(payment, me);
}

/**
 * The actor whose on-chain account is `address`, or `undefined`.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `address` does not decode.
 */
export function actorOf(payment: PaymentObject, address: string): PaymentActor | undefined {
  const role = roleOf(payment, address);
  return role === undefined ? undefined : payment[role];
}

/** A copy of `payment` with `patch` applied to one side's actor. */
export function withActor(
  payment: PaymentObject,
  role: ActorRole,
  patch: Partial<PaymentActor>,
): PaymentObject {
  return { ...payment, [role]: { ...payment[role], ...patch } };
}

/** A copy of `payment` with one side's status replaced. */
export function withStatus(payment: PaymentObject, role: ActorRole, status: StatusObject): PaymentObject {
  return withActor(payment, role, { status });
}

function changedWriteOnce<T extends object>(
  previous: T,
  next: T,
  fields: readonly (keyof T)[],
): keyof T | undefined {
  // Unset before: the first write is free. Set before: it must stay exactly the same.
  return fields.find((field) => previous[field] !== undefined && !jsonEqual(previous[field], next[field]));
}

/**
 * The write-once members `next` changes relative to `previous`, as paths (`description`,
 * `sender.kyc_data`, …). Setting a member for the first time is not a change.
 */
export function writeOnceViolations(previous: PaymentObject, next: PaymentObject): string[] {
  const out: string[] = PAYMENT_WRITE_ONCE_FIELDS.filter(
    (field) => previous[field] !== undefined && !jsonEqual(previous[field], next[field]),
  );
  for (const role of ['sender', 'receiver'] as const) {
    for (const field of ACTOR_WRITE_ONCE_FIELDS) {
      if (previous[role][field] !== undefined && !jsonEqual(previous[role][field], next[role][field])) {
        out.push(`${role}.${field}`);
      }
    }
  }
  return out;
}

/** A payment command to check, from the point of view of the VASP `me`. */
export interface PaymentCommandInput {
  /** My channel address (bech32; the zero-subaddress form is the canonical one). */
  readonly me: string;
  /** The counterparty's channel address. */
  readonly other: string;
  /** Who proposed the command: `me` or `other`. */
  readonly origin: string;
  /** The version the command reads; `undefined` for a create. */
  readonly previous: PaymentObject | undefined;
  /** The full payment record the command writes. */
  readonly next: PaymentObject;
  /** The `_writes` key of the command. */
  readonly referenceId: string;
}

/** Why a payment command is rejected: the LIP-1 command error code and a short reason. */
export interface PaymentRuleViolation {
  readonly code: Lip1CommandErrorCode;
  readonly message: string;
}

function violation(code: Lip1CommandErrorCode, message: string): PaymentRuleViolation {
  return { code, message };
}

/**
 * Checks a payment command against the LIP-1 payment rules and returns the first violation,
 * in the reference's order, or `null` when the command is acceptable:
 *
 * 1. both actor addresses decode, else `payment_invalid_libra_address`;
 * 2. the actors' on-chain accounts are exactly `{me, other}`, else `payment_wrong_actor`;
 * 3. the origin is one of them, else `payment_wrong_actor`;
 * 4. create (`previous` undefined): `reference_id` is `<origin's bech32>_<…>` and equals the
 *    `_writes` key, else `payment_wrong_structure`; the creator left the other side's status
 *    `none`, else `payment_wrong_status`;
 * 5. update: `reference_id` is unchanged and equals the `_writes` key, and no payment-level
 *    write-once member changed, else `payment_wrong_structure`; the non-proposing side's actor
 *    is unchanged, else `payment_changed_other_actor`; the proposer's write-once actor members
 *    are unchanged, else `payment_wrong_structure`; the proposer's status moved as
 *    {@link canChangeStatus} allows, else `payment_wrong_status`.
 *
 * Business checks (recipient signature, account existence) are not part of it.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `me`, `other` or `origin` does not decode or
 *   `me` and `other` are the same account (caller errors, not peer errors).
 */
export function explainPaymentCommand(input: PaymentCommandInput): PaymentRuleViolation | null {
  const me = channelAddress(input.me);
  const other = channelAddress(input.other);
  const origin = channelAddress(input.origin);
  if (me === other) throw new ParleyError('ADDRESS_INVALID', 'me and other are the same account');
  const { previous, next, referenceId } = input;

  const senderAccount = accountOf(next.sender.address);
  const receiverAccount = accountOf(next.receiver.address);
  if (senderAccount === undefined || receiverAccount === undefined) {
    return violation('payment_invalid_libra_address', 'an actor address is not a LIP-5 account identifier');
  }
  const parties = new Set([senderAccount, receiverAccount]);
  if (parties.size !== 2 || !parties.has(me) || !parties.has(other)) {
    return violation('payment_wrong_actor', `the actors must be ${me} and ${other}`);
  }
  if (origin !== me && origin !== other) {
    return violation('payment_wrong_actor', `command originates from ${origin}, not a party`);
  }
  const proposer: ActorRole = senderAccount === origin ? 'sender' : 'receiver';
  const counterpart = otherRole(proposer);

  if (previous === undefined) {
    const [prefix, ...rest] = next.reference_id.split('_');
    if (rest.length === 0 || prefix !== origin) {
      return violation('payment_wrong_structure', `expected reference_id of the form ${origin}_XYZ`);
    }
    if (next.reference_id !== referenceId) {
      return violation('payment_wrong_structure', 'reference_id differs from the _writes key');
    }
    if (next[counterpart].status.status !== 'none') {
      return violation('payment_wrong_status', `the creator set the ${counterpart} status`);
    }
    return null;
  }

  if (next.reference_id !== previous.reference_id) {
    return violation('payment_wrong_structure', 'reference_id cannot change');
  }
  if (next.reference_id !== referenceId) {
    return violation('payment_wrong_structure', 'reference_id differs from the _writes key');
  }
  const changedField = changedWriteOnce(previous, next, PAYMENT_WRITE_ONCE_FIELDS);
  if (changedField !== undefined) {
    return violation('payment_wrong_structure', `write-once field ${changedField} cannot change`);
  }
  if (!jsonEqual(previous[counterpart], next[counterpart])) {
    return violation('payment_changed_other_actor', `cannot change ${counterpart} information`);
  }
  const changedActorField = changedWriteOnce(previous[proposer], next[proposer], ACTOR_WRITE_ONCE_FIELDS);
  if (changedActorField !== undefined) {
    return violation(
      'payment_wrong_structure',
      `write-once field ${proposer}.${changedActorField} cannot change`,
    );
  }
  const from = previous[proposer].status.status;
  const to = next[proposer].status.status;
  if (!canChangeStatus(from, to, next[counterpart].status.status)) {
    return violation('payment_wrong_status', `invalid ${proposer} status transition ${from} -> ${to}`);
  }
  return null;
}

/**
 * {@link explainPaymentCommand}, returning only the LIP-1 command error code, or `null` when
 * the command is acceptable.
 *
 * @throws ParleyError `ADDRESS_INVALID` as {@link explainPaymentCommand}.
 */
export function checkPaymentCommand(input: PaymentCommandInput): Lip1CommandErrorCode | null {
  return explainPaymentCommand(input)?.code ?? null;
}
