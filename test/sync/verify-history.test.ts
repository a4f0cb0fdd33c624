import { beforeAll, describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { isOpen } from '../../src/objects/index.js';
import type { ObjectHistory } from '../../src/protocol/sync-frames.js';
import { commitItemsOf, type HistoryParties, verifyHistory } from '../../src/sync/verify-history.js';
import { type BuiltStep, buildPayment, flip, historyOf, party, signStep } from './signed-histories.js';

const a = party(0x41);
const b = party(0x42);
/** B verifies what A sends it. */
const atB: HistoryParties = {
  me: b.address,
  peer: a.address,
  myKey: b.key.publicKey,
  peerKey: a.key.publicKey,
};

async function codeOf(history: ObjectHistory, base?: Parameters<typeof verifyHistory>[2]): Promise<string> {
  try {
    await verifyHistory(history, atB, base);
    return 'verified';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

describe('verifyHistory', () => {
  let steps: BuiltStep[];
  beforeAll(async () => {
    steps = await buildPayment(a, b, 4);
  });

  it('verifies every signature and the chain, and derives the log records from the signed bytes', async () => {
    const verified = await verifyHistory(historyOf(steps), atB);
    expect(verified.head).toBe(steps[3]!.cid);
    expect(verified.chain.map((c) => c.record.writeVersion)).toEqual(steps.map((s) => s.cid));
    expect(verified.chain.map((c) => c.record.direction)).toEqual([
      'inbound',
      'outbound',
      'inbound',
      'outbound',
    ]);
    const items = commitItemsOf(verified, isOpen);
    expect(items).toHaveLength(4);
    expect(items[1]!.version).toMatchObject({
      previousVersion: steps[0]!.cid,
      version: steps[1]!.cid,
      open: true,
    });
  });

  it('rejects a flipped byte anywhere in a request or a response (the peer’s signature or its own) with SYNC_BAD_SIGNATURE', async () => {
    for (const i of [0, 1, 2, 3]) {
      for (const field of ['request', 'response'] as const) {
        for (const segment of [1, 2] as const) {
          const history = historyOf(steps);
          history.commands[i] = {
            ...history.commands[i]!,
            [field]: flip(history.commands[i]![field], segment),
          };
          expect(await codeOf(history)).toBe('SYNC_BAD_SIGNATURE');
        }
      }
    }
  });

  it('rejects a proposer that did not sign the request with SYNC_BAD_SIGNATURE, a stranger with SYNC_INVALID_HISTORY', async () => {
    const history = historyOf(steps);
    history.commands[1] = { ...history.commands[1]!, proposer: a.address };
    expect(await codeOf(history)).toBe('SYNC_BAD_SIGNATURE');
    history.commands[1] = { ...history.commands[1]!, proposer: party(0x43).address };
    expect(await codeOf(history)).toBe('SYNC_INVALID_HISTORY');
  });

  it('rejects a missing version (a gap) with SYNC_BROKEN_CHAIN', async () => {
    for (const missing of [0, 1, 2]) {
      const history = historyOf(steps.filter((_, i) => i !== missing));
      expect(await codeOf(history)).toBe('SYNC_BROKEN_CHAIN');
    }
  });

  it('rejects a re-ordered chain with SYNC_BROKEN_CHAIN', async () => {
    expect(await codeOf(historyOf([steps[0]!, steps[2]!, steps[1]!, steps[3]!]))).toBe('SYNC_BROKEN_CHAIN');
    expect(await codeOf(historyOf([steps[1]!, steps[0]!, steps[2]!, steps[3]!]))).toBe('SYNC_BROKEN_CHAIN');
  });

  it('rejects a repeated command, an empty history and a fork inside one history', async () => {
    expect(await codeOf(historyOf([steps[0]!, steps[1]!, steps[1]!]))).toBe('SYNC_INVALID_HISTORY');
    expect(await codeOf({ ...historyOf(steps), commands: [] })).toBe('SYNC_BROKEN_CHAIN');
    const sibling = signStep(a, b, steps[2]!.payment, steps[0]!.cid);
    expect(await codeOf(historyOf([steps[0]!, steps[1]!, sibling]))).toBe('SYNC_BROKEN_CHAIN');
  });

  it('rejects a signed step that breaks the payment rules with SYNC_INVALID_HISTORY', async () => {
    // A changes the receiver's actor: both signed it, but LIP-1 never allowed it.
    const payment = structuredClone(steps[0]!.payment);
    payment.receiver.status = { status: 'ready_for_settlement' };
    const bad = signStep(a, b, payment, steps[0]!.cid);
    expect(await codeOf(historyOf([steps[0]!, bad]))).toBe('SYNC_INVALID_HISTORY');
  });

  it('keeps command errors in the history without a version', async () => {
    const failed = signStep(b, a, steps[1]!.payment, steps[0]!.cid, undefined, 'used_dependencies');
    const verified = await verifyHistory(historyOf([...steps, failed]), atB);
    expect(verified.head).toBe(steps[3]!.cid);
    const items = commitItemsOf(verified, isOpen);
    expect(items.at(-1)).toEqual({
      command: expect.objectContaining({ status: 'failure', errorCode: 'used_dependencies' }),
    });
  });

  it('verifies a suffix against the version it starts from, and refuses one whose start is unknown', async () => {
    const suffix = historyOf(steps.slice(2), steps[1]!.cid);
    expect(await codeOf(suffix, steps[1]!.payment)).toBe('verified');
    expect(await codeOf(suffix)).toBe('SYNC_BROKEN_CHAIN');
  });
});
