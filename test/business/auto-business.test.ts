import { describe, expect, it } from 'vitest';
import {
  BusinessForceAbort,
  BusinessNotAuthorized,
  BusinessValidationFailure,
  createAutoBusiness,
  createPaymentObject,
} from '../../src/business/index.js';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import { encodeAddress } from '../../src/protocol/index.js';

const onchain = (byte: number): Uint8Array => new Uint8Array(16).fill(byte);
const A = encodeAddress({ hrp: 'lbr', onchain: onchain(0x41) });
const B = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42) });

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

describe('createAutoBusiness', () => {
  it('aborts with payment_invalid_libra_subaddress for a subaddress it was told is unknown, any case', async () => {
    const business = createAutoBusiness({ unknownSubaddresses: ['DEADdeadDEADdead'] });
    const payment = createPaymentObject({
      me: A,
      meSubaddressHex: '0101010101010101',
      to: B,
      toSubaddressHex: 'deaddeaddeaddead',
      amount: 1,
      currency: 'XUS',
    });
    const run = await business.paymentPreProcessing(payment, { me: B, other: A, role: 'receiver' });
    const failure = await business.checkAccountExistence(payment, run).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(BusinessForceAbort);
    expect((failure as BusinessForceAbort).abortCode).toBe('payment_invalid_libra_subaddress');
    expect((failure as BusinessForceAbort).message).toBe(
      'Subaddress deaddeaddeaddead does not exist at this VASP.',
    );
    // The sender's own account is known.
    const senderRun = await business.paymentPreProcessing(payment, { me: A, other: B, role: 'sender' });
    await expect(business.checkAccountExistence(payment, senderRun)).resolves.toBeUndefined();
  });

  it('refuses an unknown subaddress that is not 16 hex digits with BUSINESS_INVALID_INPUT', () => {
    expect(thrownCode(() => createAutoBusiness({ unknownSubaddresses: ['dead'] }))).toBe(
      'BUSINESS_INVALID_INPUT',
    );
  });

  it('is ready for settlement only once it had nothing more to request in the same run', async () => {
    const business = createAutoBusiness();
    const payment = createPaymentObject({
      me: A,
      meSubaddressHex: '0101010101010101',
      to: B,
      toSubaddressHex: '0202020202020202',
      amount: 1,
      currency: 'XUS',
    });
    const run = await business.paymentPreProcessing(payment, { me: B, other: A, role: 'receiver' });
    expect(await business.nextKycLevelToRequest(payment, run)).toBe('soft_match');
    expect(await business.readyForSettlement(payment, run)).toBe(false);
  });
});

describe('business errors', () => {
  it('are ParleyErrors with BUSINESS_ codes', () => {
    const abort = new BusinessForceAbort('payment_insufficient_funds', 'no funds');
    expect(abort.code).toBe('BUSINESS_FORCE_ABORT');
    expect(abort.abortCode).toBe('payment_insufficient_funds');
    expect(abort.retryable).toBe(false);
    expect(isParleyError(new BusinessValidationFailure(), 'BUSINESS_VALIDATION_FAILURE')).toBe(true);
    expect(isParleyError(new BusinessNotAuthorized(), 'BUSINESS_NOT_AUTHORIZED')).toBe(true);
  });
});
