/**
 * The default automatic business: drives every payment to both sides `ready_for_settlement`, the
 * way the reference's `TestBusinessContext` (0.0.9) does, so that two Parley nodes exchange the
 * same command sequence as two reference VASPs (fixtures `flows.jsonl`, flows a and b):
 *
 * 1. the sender creates with `needs_kyc_data` and its `kyc_data` (`createPaymentObject`);
 * 2. the receiver adds its `kyc_data` and the `recipient_signature`, and asks for additional KYC
 *    (`soft_match`);
 * 3. the sender adds its `additional_kyc_data` and asks for the receiver's (`soft_match`);
 * 4. the receiver adds its `additional_kyc_data` and is `ready_for_settlement`;
 * 5. the sender is `ready_for_settlement`.
 *
 * For demos and tests only: its KYC records are fixed samples and its "signature" is the test
 * business's string `<receiver bech32>.<reference_id>.SIGNED`, not a dual attestation.
 *
 * Differences from `TestBusinessContext`: it checks the recipient signature it receives (the
 * reference returned a boolean that nobody read, so it accepted anything), and its
 * `nextKycToProvide` looks at my own actor (the reference's variable mix-up looked at the other
 * actor in one version; the captured flows show the intended behaviour, which this follows).
 */
import { ParleyError } from '../errors.js';
import type { ActorRole } from '../objects/index.js';
import { channelAddress, decodeAddress, type KycData, type PaymentObject } from '../protocol/index.js';
import {
  type BusinessContext,
  BusinessForceAbort,
  BusinessValidationFailure,
  type KycLevel,
  type KycToProvide,
} from './business-context.js';

/** The `kyc_data` the automatic business provides (the reference test business's record). */
export const AUTO_KYC_DATA: Readonly<KycData> = Object.freeze({
  payload_type: 'KYC_DATA',
  payload_version: 1,
  type: 'individual',
});

/** The `additional_kyc_data` the automatic business provides (the reference test business's record). */
export const AUTO_ADDITIONAL_KYC_DATA: Readonly<KycData> = Object.freeze({
  payload_type: 'KYC_DATA',
  payload_version: 1,
  type: 'individual',
  given_name: 'John',
  surname: 'Smith',
  dob: '1973-07-08',
});

/** Options of {@link createAutoBusiness}. */
export interface AutoBusinessOptions {
  /**
   * Subaddresses (16 hex digits) that do not exist at this VASP. A payment whose actor on my side
   * has one is aborted with `payment_invalid_libra_subaddress` while my status is `none`, as the
   * reference run of fixture flow c did for `deaddeaddeaddead`.
   * @default []
   */
  readonly unknownSubaddresses?: Iterable<string>;
}

/**
 * The per-run context of the automatic business. `settle` becomes `true` once it has nothing more
 * to request in this run, and is what `readyForSettlement` answers (the reference's `ctx['settle']`).
 */
export interface AutoBusinessRun {
  readonly role: ActorRole;
  settle: boolean;
}

const SUBADDRESS_HEX_RE = /^[0-9a-fA-F]{16}$/;

function subaddressHex(address: string): string {
  return Buffer.from(decodeAddress(address).subaddress).toString('hex');
}

/** The test business's recipient signature: `<receiver bech32, zero subaddress>.<reference_id>.SIGNED`. */
export function autoRecipientSignature(payment: PaymentObject): string {
  return `${channelAddress(payment.receiver.address)}.${payment.reference_id}.SIGNED`;
}

function otherSide(role: ActorRole): ActorRole {
  return role === 'sender' ? 'receiver' : 'sender';
}

/**
 * Creates the automatic business. One instance may serve every channel of a node: it keeps no
 * state between runs.
 *
 * @throws ParleyError `BUSINESS_INVALID_INPUT` when an unknown subaddress is not 16 hex digits.
 */
export function createAutoBusiness(options: AutoBusinessOptions = {}): BusinessContext<AutoBusinessRun> {
  const unknownSubaddresses = new Set<string>();
  for (const hex of options.unknownSubaddresses ?? []) {
    if (!SUBADDRESS_HEX_RE.test(hex)) {
      throw new ParleyError('BUSINESS_INVALID_INPUT', `unknown subaddress ${hex} is not 16 hex digits`);
    }
    unknownSubaddresses.add(hex.toLowerCase());
  }

  return {
    async paymentPreProcessing(_payment, info) {
      return { role: info.role, settle: false };
    },

    async paymentInitialProcessing() {},

    async checkAccountExistence(payment, run) {
      const hex = subaddressHex(payment[run.role].address);
      if (unknownSubaddresses.has(hex)) {
        throw new BusinessForceAbort(
          'payment_invalid_libra_subaddress',
          `Subaddress ${hex} does not exist at this VASP.`,
        );
      }
    },

    validateRecipientSignature(payment) {
      if (payment.recipient_signature !== autoRecipientSignature(payment)) {
        throw new BusinessValidationFailure('recipient signature is not the expected test signature');
      }
    },

    async getRecipientSignature(payment) {
      return autoRecipientSignature(payment);
    },

    async nextKycToProvide(payment, run) {
      const mine = payment[run.role];
      const theirs = payment[otherSide(run.role)];
      const provide = new Set<KycToProvide>();
      if (mine.kyc_data === undefined) provide.add('needs_kyc_data');
      if (mine.additional_kyc_data === undefined && theirs.status.status === 'soft_match')
        provide.add('soft_match');
      if (run.role === 'receiver' && payment.recipient_signature === undefined) {
        provide.add('needs_recipient_signature');
      }
      return provide;
    },

    async nextKycLevelToRequest(payment, run): Promise<KycLevel> {
      const theirs = payment[otherSide(run.role)];
      if (theirs.kyc_data === undefined) return 'needs_kyc_data';
      if (theirs.additional_kyc_data === undefined) return 'soft_match';
      if (run.role === 'sender' && payment.recipient_signature === undefined)
        return 'needs_recipient_signature';
      run.settle = true;
      return 'none';
    },

    async getExtendedKyc() {
      return { ...AUTO_KYC_DATA };
    },

    async getAdditionalKyc() {
      return { ...AUTO_ADDITIONAL_KYC_DATA };
    },

    async readyForSettlement(_payment, run) {
      return run.settle;
    },
  };
}
