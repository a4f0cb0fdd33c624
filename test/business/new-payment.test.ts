import { afterEach, describe, expect, it, vi } from 'vitest';
import { AUTO_KYC_DATA, createPaymentObject, type NewPaymentInput } from '../../src/business/index.js';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import { checkPaymentCommand } from '../../src/objects/index.js';
import { decodeAddress, encodeAddress } from '../../src/protocol/index.js';

const onchain = (byte: number): Uint8Array => new Uint8Array(16).fill(byte);
const A = encodeAddress({ hrp: 'lbr', onchain: onchain(0x41) });
const B = encodeAddress({ hrp: 'lbr', onchain: onchain(0x42) });

const base: NewPaymentInput = {
  me: A,
  meSubaddressHex: '6161616161616161',
  to: B,
  toSubaddressHex: '6262626262626262',
  amount: 1000,
  currency: 'TIK',
};

function thrownCode(input: NewPaymentInput): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    createPaymentObject(input);
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createPaymentObject', () => {
  it('builds the sender’s create: needs_kyc_data with kyc_data, receiver none, actor subaddresses, charge', () => {
    const payment = createPaymentObject({
      ...base,
      referenceSuffix: 'ref00000001',
      timestamp: 7784993,
      description: 'tea',
    });
    expect(payment).toStrictEqual({
      sender: {
        address: 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta',
        status: { status: 'needs_kyc_data' },
        metadata: [],
        kyc_data: { ...AUTO_KYC_DATA },
      },
      receiver: {
        address: 'lbr1pgfpyysjzgfpyysjzgfpyysjzgf3xycnzvf3xycsm957ne',
        status: { status: 'none' },
        metadata: [],
      },
      reference_id: `${A}_ref00000001`,
      action: { amount: 1000, currency: 'TIK', action: 'charge', timestamp: 7784993 },
      description: 'tea',
    });
  });

  it('passes the payment rules as a create from me, seen from both sides', () => {
    const next = createPaymentObject(base);
    const command = { origin: A, previous: undefined, next, referenceId: next.reference_id };
    expect(checkPaymentCommand({ ...command, me: A, other: B })).toBeNull();
    expect(checkPaymentCommand({ ...command, me: B, other: A })).toBeNull();
  });

  it('defaults to a 32-hex reference suffix, the current time in seconds and no description', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-02T03:04:05.678Z'));
    const payment = createPaymentObject(base);
    expect(payment.reference_id).toMatch(new RegExp(`^${A}_[0-9a-f]{32}$`));
    expect(payment.action.timestamp).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000);
    expect(payment).not.toHaveProperty('description');
  });

  it('takes the subaddresses from the addresses given when no hex is', () => {
    const me = encodeAddress({ hrp: 'tlb', onchain: onchain(0x41), subaddress: new Uint8Array(8).fill(1) });
    const to = encodeAddress({ hrp: 'tlb', onchain: onchain(0x42), subaddress: new Uint8Array(8).fill(2) });
    const payment = createPaymentObject({ me, to, amount: 1, currency: 'XUS' });
    expect(payment.sender.address).toBe(me);
    expect(payment.receiver.address).toBe(to);
    expect(payment.reference_id.startsWith(`${encodeAddress({ hrp: 'tlb', onchain: onchain(0x41) })}_`)).toBe(
      true,
    );
    expect(Buffer.from(decodeAddress(payment.sender.address).subaddress).toString('hex')).toBe(
      '0101010101010101',
    );
  });

  it('uses the KYC record it is given', () => {
    const kycData = {
      payload_type: 'KYC_DATA',
      payload_version: 1,
      type: 'entity' as const,
      legal_entity_name: 'ACME',
    };
    expect(createPaymentObject({ ...base, kycData }).sender.kyc_data).toStrictEqual(kycData);
  });

  const invalid: Record<string, Partial<NewPaymentInput>> = {
    'no sender subaddress': { meSubaddressHex: '0000000000000000' },
    'no receiver subaddress': { toSubaddressHex: undefined },
    'a subaddress that is not 16 hex digits': { toSubaddressHex: '62626262' },
    'a payment to my own VASP': { to: A },
    'a zero amount': { amount: 0 },
    'a fractional amount': { amount: 1.5 },
    'an unsafe amount': { amount: 2 ** 53 },
    'an empty currency': { currency: '' },
    'a reference suffix over 64 characters': { referenceSuffix: 'x'.repeat(65) },
    'a reference suffix with a space': { referenceSuffix: 'a b' },
    'a fractional timestamp': { timestamp: 1.5 },
    'a KYC record without payload_type': { kycData: { type: 'individual' } as never },
  };
  for (const [name, patch] of Object.entries(invalid)) {
    it(`refuses ${name} with BUSINESS_INVALID_INPUT`, () => {
      expect(thrownCode({ ...base, ...patch })).toBe('BUSINESS_INVALID_INPUT');
    });
  }

  it('refuses an address that does not decode with ADDRESS_INVALID', () => {
    expect(thrownCode({ ...base, to: 'lbr1notanaddress' })).toBe('ADDRESS_INVALID');
  });
});
