import { describe, expect, it } from 'vitest';
import { ackFailpoint, KILL_AFTER_ACKS_ENV } from '../../src/admin/ack-failpoint.js';
import { refusalStatus } from '../../src/admin/refusal.js';

describe('the test-only acknowledgement failpoint', () => {
  it('is off unless the variable is a positive integer', () => {
    for (const value of [undefined, '', '0', '-3', '2.5', 'ten', ' 4', '1e3']) {
      const env = value === undefined ? {} : { [KILL_AFTER_ACKS_ENV]: value };
      expect(
        ackFailpoint(env, () => undefined),
        String(value),
      ).toBeUndefined();
    }
  });

  it('kills right at the Nth acknowledgement, once', () => {
    let kills = 0;
    let acks = 0;
    const after = ackFailpoint({ [KILL_AFTER_ACKS_ENV]: '3' }, () => {
      kills++;
      expect(acks).toBe(3);
    })!;
    for (acks = 1; acks <= 5; acks++) after();
    expect(kills).toBe(1);
  });
});

describe('refusal statuses of the admin routes', () => {
  it('answers 503 for store and lease failures, 409 for conflicts, 400 for bad input', () => {
    for (const code of ['STORE_UNAVAILABLE', 'STORE_LEASE_LOST', 'STORE_CLOSED', 'CHANNEL_CLOSED']) {
      expect(refusalStatus(code), code).toBe(503);
    }
    for (const code of [
      'CHANNEL_DEPENDENCY_UNAVAILABLE',
      'STORE_DUPLICATE_COMMAND',
      'STORE_VERSION_CONFLICT',
      'SYNC_FORK_LOST',
      'COMMAND_ABANDONED',
    ]) {
      expect(refusalStatus(code), code).toBe(409);
    }
    for (const code of ['BUSINESS_INVALID_INPUT', 'CHANNEL_INVALID_COMMAND', 'STORE_INVALID_INPUT']) {
      expect(refusalStatus(code), code).toBe(400);
    }
    expect(refusalStatus('INTERNAL')).toBe(500);
  });
});
