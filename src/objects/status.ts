/**
 * The payment status machine of the LIP-1 v1 reference (lip1-v1.md §4): status heights and
 * the transitions `can_change_status` allows.
 */
import type { PaymentStatus } from '../protocol/lip1.js';

/**
 * Status heights (`STATUS_HEIGHTS` in the reference). A side may only move to a status of
 * equal or greater height.
 */
export const STATUS_HEIGHTS = {
  none: 100,
  needs_kyc_data: 200,
  needs_recipient_signature: 200,
  soft_match: 200,
  pending_review: 200,
  ready_for_settlement: 400,
  abort: 1000,
} as const satisfies Record<PaymentStatus, number>;

/**
 * Whether one side of a payment may move its status from `from` to `to` while the other side's
 * status is `otherSide` (the other side does not change in the same command).
 *
 * Keeping the same status is always allowed. Otherwise:
 * - once a side is `abort` it cannot change;
 * - once both sides are `ready_for_settlement` nothing changes;
 * - when the other side is `abort`, the only move is to `abort`;
 * - `ready_for_settlement` may only move to `abort`, and only after the other side aborted;
 * - the height never decreases.
 */
export function canChangeStatus(from: PaymentStatus, to: PaymentStatus, otherSide: PaymentStatus): boolean {
  if (from === to) return true;
  if (from === 'abort') return false;
  if (from === 'ready_for_settlement' && otherSide === 'ready_for_settlement') return false;
  if (otherSide === 'abort' && to !== 'abort') return false;
  if (from === 'ready_for_settlement' && otherSide !== 'abort') return false;
  return STATUS_HEIGHTS[to] >= STATUS_HEIGHTS[from];
}

/**
 * Whether a pair of statuses is final: both sides `ready_for_settlement`, or either `abort`.
 * A payment is *open* until then.
 */
export function isFinalStatusPair(sender: PaymentStatus, receiver: PaymentStatus): boolean {
  return (
    sender === 'abort' ||
    receiver === 'abort' ||
    (sender === 'ready_for_settlement' && receiver === 'ready_for_settlement')
  );
}
