import { it } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { canChangeStatus, isFinalStatusPair, STATUS_HEIGHTS } from '../../src/objects/index.js';
import { PaymentStatus } from '../../src/protocol/index.js';
import { arbPaymentStatus } from '../helpers/arbitraries.js';

describe('STATUS_HEIGHTS', () => {
  it('orders the statuses as the reference does', () => {
    expect(STATUS_HEIGHTS).toEqual({
      none: 100,
      needs_kyc_data: 200,
      needs_recipient_signature: 200,
      soft_match: 200,
      pending_review: 200,
      ready_for_settlement: 400,
      abort: 1000,
    });
    expect(Object.keys(STATUS_HEIGHTS).sort()).toEqual([...PaymentStatus.options].sort());
  });
});

describe('canChangeStatus', () => {
  // [from, to, other side, allowed]
  const table: Array<[PaymentStatus, PaymentStatus, PaymentStatus, boolean]> = [
    ['none', 'none', 'needs_kyc_data', true],
    ['none', 'needs_kyc_data', 'none', true],
    ['none', 'soft_match', 'needs_kyc_data', true],
    ['none', 'ready_for_settlement', 'needs_kyc_data', true],
    ['none', 'abort', 'needs_kyc_data', true],
    ['needs_kyc_data', 'soft_match', 'soft_match', true],
    ['soft_match', 'pending_review', 'soft_match', true],
    ['pending_review', 'needs_recipient_signature', 'none', true],
    ['soft_match', 'ready_for_settlement', 'soft_match', true],
    ['soft_match', 'ready_for_settlement', 'ready_for_settlement', true],
    ['needs_kyc_data', 'none', 'none', false],
    ['soft_match', 'none', 'soft_match', false],
    ['ready_for_settlement', 'soft_match', 'soft_match', false],
    ['ready_for_settlement', 'none', 'soft_match', false],
    // ready may only move to abort after the other side aborted
    ['ready_for_settlement', 'abort', 'soft_match', false],
    ['ready_for_settlement', 'abort', 'none', false],
    ['ready_for_settlement', 'abort', 'abort', true],
    // once both are ready nothing changes
    ['ready_for_settlement', 'abort', 'ready_for_settlement', false],
    ['ready_for_settlement', 'ready_for_settlement', 'ready_for_settlement', true],
    // once I abort I cannot change
    ['abort', 'ready_for_settlement', 'soft_match', false],
    ['abort', 'none', 'none', false],
    ['abort', 'abort', 'ready_for_settlement', true],
    // when the other side aborted I may only follow
    ['none', 'ready_for_settlement', 'abort', false],
    ['soft_match', 'ready_for_settlement', 'abort', false],
    ['needs_kyc_data', 'soft_match', 'abort', false],
    ['needs_kyc_data', 'abort', 'abort', true],
    ['none', 'abort', 'abort', true],
  ];
  it.each(table)('%s -> %s with the other side %s: %s', (from, to, other, allowed) => {
    expect(canChangeStatus(from, to, other)).toBe(allowed);
  });

  it.prop([arbPaymentStatus, arbPaymentStatus, arbPaymentStatus])(
    'never lowers a height, never leaves abort, never leaves a settled pair',
    (from, to, other) => {
      if (!canChangeStatus(from, to, other)) return;
      expect(STATUS_HEIGHTS[to]).toBeGreaterThanOrEqual(STATUS_HEIGHTS[from]);
      if (from === 'abort') expect(to).toBe('abort');
      if (from === 'ready_for_settlement' && other === 'ready_for_settlement') expect(to).toBe(from);
      if (other === 'abort') expect(['abort', from]).toContain(to);
    },
  );

  it.prop([arbPaymentStatus, arbPaymentStatus])('always allows keeping the same status', (status, other) => {
    expect(canChangeStatus(status, status, other)).toBe(true);
  });
});

describe('isFinalStatusPair', () => {
  const table: Array<[PaymentStatus, PaymentStatus, boolean]> = [
    ['ready_for_settlement', 'ready_for_settlement', true],
    ['abort', 'none', true],
    ['soft_match', 'abort', true],
    ['abort', 'abort', true],
    ['ready_for_settlement', 'soft_match', false],
    ['needs_kyc_data', 'ready_for_settlement', false],
    ['none', 'none', false],
  ];
  it.each(table)('(%s, %s) is final: %s', (sender, receiver, final) => {
    expect(isFinalStatusPair(sender, receiver)).toBe(final);
    expect(isFinalStatusPair(receiver, sender)).toBe(final);
  });
});
