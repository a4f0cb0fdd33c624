import { describe, expect, it } from 'vitest';
import {
  type AutoBusinessRun,
  type BusinessContext,
  createAutoBusiness,
  createPaymentObject,
  nextPaymentVersion,
} from '../../src/business/index.js';
import { checkPaymentCommand, isFinal } from '../../src/objects/index.js';
import type { PaymentObject } from '../../src/protocol/index.js';
import { HAVE_FIXTURES } from '../helpers/fixtures.js';
import { type FlowStep, flowParties, flowSteps, type Party } from './flow-fixtures.js';

/*
 * The reference flows replayed with the automatic business. Nothing in the compared payments is a
 * free value: reference_id, timestamp and description come from the creator's input, and every
 * later field is decided by the (deterministic) test business. So versions are compared whole.
 */

const other = (party: Party): Party => (party === 'A' ? 'B' : 'A');

/** The automatic business of each party; in flow c, B does not know the receiver subaddress. */
function businesses(flow: 'a' | 'b' | 'c'): Record<Party, BusinessContext<AutoBusinessRun>> {
  const unknown = flow === 'c' ? [flowParties().unknownSubaddress] : [];
  return { A: createAutoBusiness(), B: createAutoBusiness({ unknownSubaddresses: unknown }) };
}

/** Both parties' payment-rule checks of a command `origin` proposes. */
function expectAcceptedByBoth(origin: Party, previous: PaymentObject, next: PaymentObject): void {
  const { address } = flowParties();
  const command = { origin: address[origin], previous, next, referenceId: previous.reference_id };
  expect(checkPaymentCommand({ ...command, me: address[origin], other: address[other(origin)] })).toBeNull();
  expect(checkPaymentCommand({ ...command, me: address[other(origin)], other: address[origin] })).toBeNull();
}

/** Alternates nextPaymentVersion between the two parties, as two nodes would, until one has nothing to say. */
async function simulate(
  created: PaymentObject,
  creator: Party,
  business: Record<Party, BusinessContext<AutoBusinessRun>>,
): Promise<{ versions: PaymentObject[]; proposers: Party[] }> {
  const { address } = flowParties();
  const versions = [created];
  const proposers = [creator];
  for (let turn = other(creator); versions.length < 20; turn = other(turn)) {
    const latest = versions.at(-1)!;
    const next = await nextPaymentVersion({ payment: latest, me: address[turn], business: business[turn] });
    if (next === null) break;
    expectAcceptedByBoth(turn, latest, next);
    versions.push(next);
    proposers.push(turn);
  }
  return { versions, proposers };
}

function createFromFixture(first: FlowStep): PaymentObject {
  const { address, subaddress, unknownSubaddress } = flowParties();
  const sender = first.from;
  const receiver = first.to;
  return createPaymentObject({
    me: address[sender],
    meSubaddressHex: subaddress[sender],
    to: address[receiver],
    toSubaddressHex: first.flow === 'c' ? unknownSubaddress : subaddress[receiver],
    amount: first.payment.action.amount,
    currency: first.payment.action.currency,
    description: first.payment.description!,
    referenceSuffix: first.payment.reference_id.split('_')[1]!,
    timestamp: first.payment.action.timestamp,
  });
}

describe.skipIf(!HAVE_FIXTURES)('nextPaymentVersion on the reference flows', () => {
  for (const flow of ['a', 'b', 'c'] as const) {
    describe(`flow ${flow}`, () => {
      it('answers each step, as its receiver, with exactly the next step of the reference', async () => {
        const steps = flowSteps(flow);
        const { address } = flowParties();
        const business = businesses(flow);
        for (const [i, step] of steps.entries()) {
          const expected = steps[i + 1];
          const next = await nextPaymentVersion({
            payment: step.payment,
            me: address[step.to],
            business: business[step.to],
          });
          if (expected === undefined) {
            expect(next, `after the final step ${step.step}`).toBeNull();
            continue;
          }
          expect(expected.from).toBe(step.to);
          expect(next, `step ${expected.step}`).toStrictEqual(expected.payment);
          expectAcceptedByBoth(step.to, step.payment, next!);
        }
      });

      it('has nothing to add for either party once the payment is final', async () => {
        const steps = flowSteps(flow);
        const last = steps.at(-1)!;
        const { address } = flowParties();
        const business = businesses(flow);
        expect(isFinal(last.payment)).toBe(true);
        for (const party of ['A', 'B'] as const) {
          await expect(
            nextPaymentVersion({ payment: last.payment, me: address[party], business: business[party] }),
          ).resolves.toBeNull();
        }
      });

      it('reproduces the whole flow from the creator’s createPaymentObject, in the same number of commands', async () => {
        const steps = flowSteps(flow);
        const created = createFromFixture(steps[0]!);
        expect(created).toStrictEqual(steps[0]!.payment);
        const { versions, proposers } = await simulate(created, steps[0]!.from, businesses(flow));
        expect(versions).toStrictEqual(steps.map((s) => s.payment));
        expect(proposers).toStrictEqual(steps.map((s) => s.from));
      });
    });
  }

  it('drives a fresh payment between two automatic businesses to both ready_for_settlement in 5 commands', async () => {
    const { address } = flowParties();
    const created = createPaymentObject({
      me: address.B,
      meSubaddressHex: '0102030405060708',
      to: address.A,
      toSubaddressHex: 'a1a2a3a4a5a6a7a8',
      amount: 42,
      currency: 'XUS',
    });
    const { versions } = await simulate(created, 'B', businesses('a'));
    expect(versions).toHaveLength(5);
    const last = versions.at(-1)!;
    expect(last.sender.status).toStrictEqual({ status: 'ready_for_settlement' });
    expect(last.receiver.status).toStrictEqual({ status: 'ready_for_settlement' });
  });

  it('ends an aborted payment with the abort and a FOLLOW in 3 commands', async () => {
    const { address, unknownSubaddress } = flowParties();
    const created = createPaymentObject({
      me: address.A,
      meSubaddressHex: '0102030405060708',
      to: address.B,
      toSubaddressHex: unknownSubaddress.toUpperCase(),
      amount: 7,
      currency: 'XUS',
    });
    const { versions, proposers } = await simulate(created, 'A', businesses('c'));
    expect(versions).toHaveLength(3);
    expect(proposers).toStrictEqual(['A', 'B', 'A']);
    const last = versions.at(-1)!;
    expect(last.receiver.status).toStrictEqual({
      status: 'abort',
      abort_code: 'payment_invalid_libra_subaddress',
      abort_message: `Subaddress ${unknownSubaddress} does not exist at this VASP.`,
    });
    expect(last.sender.status).toStrictEqual({
      status: 'abort',
      abort_code: 'FOLLOW',
      abort_message: 'Follows the abort from the other side.',
    });
  });
});
