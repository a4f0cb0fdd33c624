/**
 * fast-check arbitraries of valid LIP-1 v1 values, shaped as the reference sends them.
 */
import { fc } from '@fast-check/vitest';
import {
  type AddressHrp,
  type CommandRequestObject,
  encodeAddress,
  type KycData,
  type PaymentAction,
  type PaymentActor,
  type PaymentObject,
  type PaymentStatus,
  type StatusObject,
} from '../../src/protocol/index.js';

/** Any text of valid code points (no lone surrogates), including non-ASCII. */
export const arbText = (maxLength = 24): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ maxLength }), fc.string({ unit: 'binary', maxLength }));

/** 32 lowercase hex characters, the reference's `urandom(16).hex()` versions and cids. */
export const arbHex16 = fc
  .uint8Array({ minLength: 16, maxLength: 16 })
  .map((b) => Buffer.from(b).toString('hex'));

/** A LIP-5 human-readable part. */
export const arbHrp: fc.Arbitrary<AddressHrp> = fc.constantFrom('lbr', 'tlb', 'plb');

/** A 16-byte on-chain address. */
export const arbOnchain = fc.uint8Array({ minLength: 16, maxLength: 16 });

/** An 8-byte subaddress. */
export const arbSubaddress = fc.uint8Array({ minLength: 8, maxLength: 8 });

/** Two different on-chain addresses. */
export const arbOnchainPair = fc
  .tuple(arbOnchain, arbOnchain)
  .filter(([a, b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0);

/** Any payment status. */
export const arbPaymentStatus: fc.Arbitrary<PaymentStatus> = fc.constantFrom(
  'none',
  'needs_kyc_data',
  'needs_recipient_signature',
  'pending_review',
  'soft_match',
  'ready_for_settlement',
  'abort',
);

/** A valid status object: abort code and message exactly when aborting. */
export const arbStatusObject: fc.Arbitrary<StatusObject> = arbPaymentStatus.chain(
  (status): fc.Arbitrary<StatusObject> =>
    status === 'abort'
      ? fc.record({ status: fc.constant(status), abort_code: arbText(), abort_message: arbText() })
      : fc.constant({ status }),
);

const arbJsonDict = fc.dictionary(
  fc.string({ maxLength: 8 }),
  fc.oneof(arbText(), fc.integer(), fc.boolean(), fc.constant(null)),
  { maxKeys: 3 },
);

/** Valid KYC data with a random selection of the optional members. */
export const arbKycData: fc.Arbitrary<KycData> = fc.record(
  {
    payload_type: fc.constant('KYC_DATA'),
    payload_version: fc.integer({ min: 0, max: 10 }),
    type: fc.constantFrom('individual' as const, 'entity' as const),
    given_name: arbText(),
    surname: arbText(),
    address: arbJsonDict,
    dob: arbText(10),
    place_of_birth: arbJsonDict,
    national_id: arbJsonDict,
    legal_entity_name: arbText(),
    other: arbJsonDict,
  },
  { requiredKeys: ['payload_type', 'payload_version', 'type'] },
);

/** A valid actor at `address`. */
export const arbPaymentActor = (address: string): fc.Arbitrary<PaymentActor> =>
  fc.record(
    {
      address: fc.constant(address),
      kyc_data: arbKycData,
      additional_kyc_data: arbKycData,
      status: arbStatusObject,
      metadata: fc.array(arbText(), { maxLength: 3 }),
    },
    { requiredKeys: ['address', 'status', 'metadata'] },
  );

/** A valid payment action. */
export const arbPaymentAction: fc.Arbitrary<PaymentAction> = fc.record({
  amount: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  currency: fc.constantFrom('TIK', 'XUS', 'XDX', 'Coin1'),
  action: fc.constant('charge'),
  timestamp: fc.maxSafeInteger(),
});

/** What {@link arbPaymentObject} generates around. */
export interface PaymentParties {
  readonly hrp: AddressHrp;
  readonly senderOnchain: Uint8Array;
  readonly receiverOnchain: Uint8Array;
  /** Whether the sender created the payment (its account prefixes `reference_id`). */
  readonly senderCreated: boolean;
}

/** The parties of a payment: two different accounts on one network. */
export const arbPaymentParties: fc.Arbitrary<PaymentParties> = fc
  .record({ hrp: arbHrp, pair: arbOnchainPair, senderCreated: fc.boolean() })
  .map(({ hrp, pair: [senderOnchain, receiverOnchain], senderCreated }) => ({
    hrp,
    senderOnchain,
    receiverOnchain,
    senderCreated,
  }));

/**
 * A structurally valid payment (every member well-typed, actor addresses valid LIP-5 with a
 * subaddress, `reference_id` prefixed by the creator's zero-subaddress account).
 */
export const arbPaymentObjectFor = (parties: PaymentParties): fc.Arbitrary<PaymentObject> =>
  fc
    .record({
      senderSub: arbSubaddress,
      receiverSub: arbSubaddress,
      suffix: fc.oneof(arbHex16, fc.string({ minLength: 1, maxLength: 20 })),
    })
    .chain(({ senderSub, receiverSub, suffix }) => {
      const { hrp, senderOnchain, receiverOnchain, senderCreated } = parties;
      const creator = encodeAddress({ hrp, onchain: senderCreated ? senderOnchain : receiverOnchain });
      return fc.record(
        {
          sender: arbPaymentActor(encodeAddress({ hrp, onchain: senderOnchain, subaddress: senderSub })),
          receiver: arbPaymentActor(
            encodeAddress({ hrp, onchain: receiverOnchain, subaddress: receiverSub }),
          ),
          reference_id: fc.constant(`${creator}_${suffix}`),
          original_payment_reference_id: arbText(),
          description: arbText(40),
          action: arbPaymentAction,
          recipient_signature: arbText(),
        },
        { requiredKeys: ['sender', 'receiver', 'reference_id', 'action'] },
      );
    });

/** A structurally valid payment between random parties. */
export const arbPaymentObject: fc.Arbitrary<PaymentObject> = arbPaymentParties.chain(arbPaymentObjectFor);

/** A valid payment `CommandRequestObject`: `cid` equals the written version; `_reads` 0 or 1 entry. */
export const arbCommandRequestObject: fc.Arbitrary<CommandRequestObject> = fc
  .record({ payment: arbPaymentObject, cid: arbHex16, read: fc.option(arbHex16, { nil: undefined }) })
  .map(({ payment, cid, read }) => ({
    _ObjectType: 'CommandRequestObject' as const,
    cid,
    command_type: 'PaymentCommand' as const,
    command: {
      _ObjectType: 'PaymentCommand' as const,
      _reads: read === undefined ? {} : { [payment.reference_id]: read },
      _writes: { [payment.reference_id]: cid },
      payment,
    },
  }));
