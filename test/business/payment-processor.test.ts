import { describe, expect, it, vi } from 'vitest';
import {
  type AutoBusinessRun,
  autoRecipientSignature,
  type BusinessContext,
  BusinessForceAbort,
  BusinessValidationFailure,
  createAutoBusiness,
  createPaymentObject,
  nextPaymentVersion,
  validateIncoming,
} from '../../src/business/index.js';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import { checkPaymentCommand, withStatus } from '../../src/objects/index.js';
import { encodeAddress, type PaymentObject } from '../../src/protocol/index.js';

const onchain = (byte: number): Uint8Array => new Uint8Array(16).fill(byte);
const A = encodeAddress({ hrp: 'lbr', onchain: onchain(0x41) });
const B = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42) });
const D = encodeAddress({ hrp: 'lbr', onchain: onchain(0xdd) });

/** A pays B: A's create. */
function created(): PaymentObject {
  return createPaymentObject({
    me: A,
    meSubaddressHex: '6161616161616161',
    to: B,
    toSubaddressHex: '6262626262626262',
    amount: 1000,
    currency: 'TIK',
    referenceSuffix: '689465ca9fb477874898b7f7cbd62f6b',
    timestamp: 1795691995,
  });
}

/** The automatic business with some methods replaced. */
function businessWith(
  overrides: Partial<BusinessContext<AutoBusinessRun>>,
): BusinessContext<AutoBusinessRun> {
  return { ...createAutoBusiness(), ...overrides };
}

async function rejection(promise: Promise<unknown>): Promise<ErrorCode | 'resolved' | 'not a ParleyError'> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

/** B's answer to A's create, through the processor. */
async function bAnswers(
  business: BusinessContext<AutoBusinessRun>,
  extra = {},
): Promise<PaymentObject | null> {
  return nextPaymentVersion({ payment: created(), me: B, business, errorRef: () => 'ref-1', ...extra });
}

describe('nextPaymentVersion: business errors', () => {
  it('aborts with payment_vasp_error, quoting the error reference, when the business throws a generic error', async () => {
    const failure = new Error('KYC database unreachable');
    const onUnexpectedError = vi.fn();
    const business = businessWith({
      getExtendedKyc: async () => {
        throw failure;
      },
    });
    const next = await bAnswers(business, { onUnexpectedError });
    expect(next?.receiver.status).toStrictEqual({
      status: 'abort',
      abort_code: 'payment_vasp_error',
      abort_message: 'An unexpected exception was raised by the VASP business logic. Ref: ref-1',
    });
    expect(onUnexpectedError).toHaveBeenCalledWith(failure, 'ref-1');
  });

  it('keeps nothing the business added before it failed', async () => {
    const business = businessWith({
      getRecipientSignature: async () => {
        throw new Error('HSM offline');
      },
    });
    const next = await bAnswers(business);
    expect(next?.receiver.kyc_data).toBeUndefined();
    expect(next?.recipient_signature).toBeUndefined();
    expect(next).toStrictEqual(withStatus(created(), 'receiver', next!.receiver.status));
  });

  it('aborts with the code and message of a BusinessForceAbort, keeping nothing the business added', async () => {
    const business = businessWith({
      getRecipientSignature: async () => {
        throw new BusinessForceAbort('payment_insufficient_funds', 'Payee account is frozen.');
      },
    });
    const next = await bAnswers(business);
    expect(next).toStrictEqual(
      withStatus(created(), 'receiver', {
        status: 'abort',
        abort_code: 'payment_insufficient_funds',
        abort_message: 'Payee account is frozen.',
      }),
    );
  });

  it('treats a BusinessForceAbort whose code is not a LIP-1 abort code as a VASP error', async () => {
    const business = businessWith({
      checkAccountExistence: async () => {
        throw new BusinessForceAbort('parsing_error' as never, 'not an abort code');
      },
    });
    expect((await bAnswers(business))?.receiver.status.abort_code).toBe('payment_vasp_error');
  });

  it('aborts with payment_vasp_error when paymentPreProcessing fails', async () => {
    const business = businessWith({
      paymentPreProcessing: async () => {
        throw new Error('no transaction');
      },
    });
    expect((await bAnswers(business))?.receiver.status.abort_code).toBe('payment_vasp_error');
  });

  it('still aborts when the error reporter itself throws', async () => {
    const business = businessWith({
      readyForSettlement: async () => {
        throw new Error('boom');
      },
    });
    const onUnexpectedError = (): void => {
      throw new Error('logger broken');
    };
    expect((await bAnswers(business, { onUnexpectedError }))?.receiver.status.abort_code).toBe(
      'payment_vasp_error',
    );
  });

  it('uses 16 random bytes as hex for the error reference by default', async () => {
    const business = businessWith({
      readyForSettlement: async () => {
        throw new Error('boom');
      },
    });
    const next = await nextPaymentVersion({ payment: created(), me: B, business });
    expect(next?.receiver.status.abort_message).toMatch(/Ref: [0-9a-f]{32}$/);
  });
});

describe('nextPaymentVersion: what the business returns is checked before it is sent', () => {
  /** A's create, with B's kyc_data already in it (for the write-once cases). */
  const withReceiverKyc = (): PaymentObject => ({
    ...created(),
    receiver: { ...created().receiver, kyc_data: created().sender.kyc_data! },
  });
  const cases: Record<string, [PaymentObject, Partial<BusinessContext<AutoBusinessRun>>]> = {
    'a KYC record that is not KycData': [
      created(),
      { getExtendedKyc: async () => ({ type: 'robot' }) as never },
    ],
    'a signature that is not a string': [created(), { getRecipientSignature: async () => 42 as never }],
    'a requested level that is not a KYC level': [
      created(),
      { nextKycLevelToRequest: async () => 'ready_for_settlement' as never },
    ],
    'a kyc_data different from the one already sent': [
      withReceiverKyc(),
      {
        nextKycToProvide: async () => new Set(['needs_kyc_data' as const]),
        getExtendedKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 2, type: 'entity' }),
      },
    ],
  };
  for (const [name, [payment, overrides]] of Object.entries(cases)) {
    it(`aborts with payment_vasp_error on ${name}`, async () => {
      const next = await nextPaymentVersion({ payment, me: B, business: businessWith(overrides) });
      expect(next).toStrictEqual(withStatus(payment, 'receiver', next!.receiver.status));
      expect(next?.receiver.status.abort_code).toBe('payment_vasp_error');
    });
  }

  it('accepts the same write-once value sent again', async () => {
    const payment = withReceiverKyc();
    const business = businessWith({ nextKycToProvide: async () => new Set(['needs_kyc_data' as const]) });
    const next = await nextPaymentVersion({ payment, me: B, business });
    expect(next?.receiver.status).toStrictEqual({ status: 'soft_match' });
  });

  it('aborts with payment_vasp_error when the sender is asked to add the recipient signature', async () => {
    const step2 = (await bAnswers(createAutoBusiness()))!;
    const unsigned = { ...step2 };
    delete unsigned.recipient_signature;
    const business = businessWith({
      nextKycToProvide: async () => new Set(['needs_recipient_signature' as const]),
    });
    const next = await nextPaymentVersion({ payment: unsigned, me: A, business });
    expect(next?.sender.status.abort_code).toBe('payment_vasp_error');
    expect(next?.recipient_signature).toBeUndefined();
  });

  it('gives the business a read-only payment: changing it aborts, and changes nothing', async () => {
    const tried: unknown[] = [];
    const business = businessWith({
      nextKycToProvide: async (payment, run) => {
        try {
          payment.sender.status = { status: 'ready_for_settlement' };
        } catch (err) {
          tried.push(err);
        }
        payment.description = 'changed';
        return createAutoBusiness().nextKycToProvide(payment, run);
      },
    });
    const next = await bAnswers(business);
    expect(tried).toHaveLength(1);
    expect(tried[0]).toBeInstanceOf(TypeError);
    expect(next?.receiver.status.status).toBe('abort');
    expect(next?.receiver.status.abort_code).toBe('payment_vasp_error');
    expect(next?.sender).toStrictEqual(created().sender);
    expect(next?.description).toBeUndefined();
    expect(
      checkPaymentCommand({
        me: B,
        other: A,
        origin: B,
        previous: created(),
        next: next!,
        referenceId: next!.reference_id,
      }),
    ).toBeNull();
  });
});

describe('nextPaymentVersion: statuses', () => {
  it('returns null when the business has nothing to change', async () => {
    const business = businessWith({
      nextKycLevelToRequest: async () => 'none',
      nextKycToProvide: async () => new Set(),
      readyForSettlement: async () => false,
    });
    expect(await bAnswers(business)).toBeNull();
  });

  it('does not call the business once I aborted', async () => {
    const paymentPreProcessing = vi.fn();
    const payment = withStatus(created(), 'receiver', {
      status: 'abort',
      abort_code: 'payment_vasp_error',
      abort_message: 'x',
    });
    const next = await nextPaymentVersion({
      payment,
      me: B,
      business: businessWith({ paymentPreProcessing }),
    });
    expect(next).toBeNull();
    expect(paymentPreProcessing).not.toHaveBeenCalled();
  });

  it('follows the other side’s abort even from ready_for_settlement', async () => {
    let payment = withStatus(created(), 'receiver', { status: 'ready_for_settlement' });
    payment = withStatus(payment, 'sender', {
      status: 'abort',
      abort_code: 'payment_insufficient_funds',
      abort_message: 'x',
    });
    const next = await nextPaymentVersion({ payment, me: B, business: createAutoBusiness() });
    expect(next?.receiver.status).toStrictEqual({
      status: 'abort',
      abort_code: 'FOLLOW',
      abort_message: 'Follows the abort from the other side.',
    });
  });

  it('returns null for a ready side while the other side is still exchanging KYC', async () => {
    const payment = withStatus(created(), 'receiver', { status: 'ready_for_settlement' });
    expect(await nextPaymentVersion({ payment, me: B, business: createAutoBusiness() })).toBeNull();
  });

  it('throws BUSINESS_INVALID_NEXT_VERSION rather than abort a side that is ready_for_settlement', async () => {
    const payment = withStatus(created(), 'receiver', { status: 'ready_for_settlement' });
    const business = businessWith({
      paymentInitialProcessing: async () => {
        throw new Error('late failure');
      },
    });
    expect(await rejection(nextPaymentVersion({ payment, me: B, business }))).toBe(
      'BUSINESS_INVALID_NEXT_VERSION',
    );
  });

  it('throws BUSINESS_INVALID_INPUT when I am not a party of the payment', async () => {
    expect(
      await rejection(nextPaymentVersion({ payment: created(), me: D, business: createAutoBusiness() })),
    ).toBe('BUSINESS_INVALID_INPUT');
  });

  it('accepts my address with a subaddress as me', async () => {
    const me = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42), subaddress: new Uint8Array(8).fill(9) });
    const next = await nextPaymentVersion({ payment: created(), me, business: createAutoBusiness() });
    expect(next?.receiver.status).toStrictEqual({ status: 'soft_match' });
  });
});

describe('validateIncoming', () => {
  async function signedByB(): Promise<PaymentObject> {
    return (await bAnswers(createAutoBusiness()))!;
  }

  it('accepts the receiver’s valid recipient signature at the sender', async () => {
    const payment = await signedByB();
    expect(await validateIncoming({ payment, origin: B, me: A, business: createAutoBusiness() })).toBeNull();
  });

  it('refuses a bad recipient signature with payment_wrong_recipient_signature', async () => {
    const payment = { ...(await signedByB()), recipient_signature: 'VALID' };
    expect(await validateIncoming({ payment, origin: B, me: A, business: createAutoBusiness() })).toBe(
      'payment_wrong_recipient_signature',
    );
  });

  it('does not ask the business when I am the receiver, the payment is unsigned, or I proposed it', async () => {
    const validateRecipientSignature = vi.fn(() => {
      throw new BusinessValidationFailure();
    });
    const business = businessWith({ validateRecipientSignature });
    const payment = await signedByB();
    expect(await validateIncoming({ payment, origin: A, me: B, business })).toBeNull();
    expect(await validateIncoming({ payment: created(), origin: B, me: A, business })).toBeNull();
    expect(await validateIncoming({ payment, origin: A, me: A, business })).toBeNull();
    expect(validateRecipientSignature).not.toHaveBeenCalled();
  });

  it('answers payment_wrong_actor when I am not a party', async () => {
    expect(await validateIncoming({ payment: created(), me: D, business: createAutoBusiness() })).toBe(
      'payment_wrong_actor',
    );
  });

  it('rethrows any other business error', async () => {
    const business = businessWith({
      validateRecipientSignature: async () => {
        throw new Error('key store down');
      },
    });
    await expect(validateIncoming({ payment: await signedByB(), me: A, business })).rejects.toThrow(
      'key store down',
    );
  });

  it('passes the expected test signature', async () => {
    const payment = await signedByB();
    expect(payment.recipient_signature).toBe(autoRecipientSignature(payment));
    expect(payment.recipient_signature).toBe(`${B}.${payment.reference_id}.SIGNED`);
  });
});
