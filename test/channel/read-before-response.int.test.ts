/**
 * The peer's business reacts to my command as soon as it committed it: its response and its
 * next command (reading my version) arrive back to back. When the response is still being
 * checked as the next command is decided, the command waits for it instead of being answered
 * `wait` (which would cost the peer a resend after its backoff).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createAutoBusiness, createPaymentObject, nextPaymentVersion } from '../../src/business/index.js';
import type { ChannelCore } from '../../src/channel/channel-core.js';
import {
  decodeJwsPayloadUnverified,
  decodeResponse,
  type PaymentObject,
  verifyJws,
} from '../../src/protocol/index.js';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import { coreOfParty, tempSqliteStore } from '../helpers/parties.js';
import { type Party, party } from '../sync/signed-histories.js';

/** Checks signatures as the node does, but holds responses until `release()`. */
function responseGate(): { verifier: JwsVerifier; release(): void; releaseOldest(): void; held(): number } {
  let open = false;
  const held: Array<() => void> = [];
  return {
    verifier: {
      async verifyMany(items) {
        const responses = items.filter(({ jws }) =>
          decodeJwsPayloadUnverified(jws).includes('"CommandResponseObject"'),
        );
        if (responses.length > 0 && !open) await new Promise<void>((resolve) => held.push(resolve));
        return inThreadVerifier.verifyMany(items);
      },
    },
    release() {
      open = true;
      for (const resolve of held.splice(0)) resolve();
    },
    releaseOldest() {
      held.shift()?.();
    },
    held: () => held.length,
  };
}

/** A new payment from `A` to `B`. */
function paymentOf(A: Party, B: Party, amount: number): PaymentObject {
  return createPaymentObject({
    me: A.address,
    meSubaddressHex: '0000000000000001',
    to: B.address,
    toSubaddressHex: '0000000000000002',
    amount,
    currency: 'TIK',
  });
}

/**
 * Hands `a` a response, then a request in a later turn (a later socket read: frames of one turn
 * are verified together), and returns once the request waits or has its answer.
 */
async function responseThenRequest(a: ChannelCore, responseJws: string, requestJws: string) {
  const response = a.handleResponse(responseJws);
  await nextTurn();
  const request = a.handleRequest(requestJws);
  let settled = false;
  void request.finally(() => {
    settled = true;
  });
  while (a.waitingRequests === 0 && !settled) await nextTurn();
  return { response, request, settled: () => settled };
}

describe('a request that reads my version while its response is still being checked', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  /**
   * A creates a payment; B commits it and at once sequences its next version, reading A's. A's
   * signature checks go through `verifier` when given.
   */
  async function createThenReact(bytes: [number, number], verifier?: JwsVerifier) {
    const [A, B] = [party(bytes[0]), party(bytes[1])];
    const [sideA, sideB] = [await tempSqliteStore(), await tempSqliteStore()];
    disposers.push(sideA.dispose, sideB.dispose);
    const a = await coreOfParty(A, B, sideA.store, verifier);
    const b = await coreOfParty(B, A, sideB.store);
    const payment = paymentOf(A, B, 100);
    const create = await a.sequence({ payment });
    const accepted = await b.handleRequest(create.requestJws);
    expect(accepted.outcome).toMatchObject({ kind: 'committed', status: 'success' });
    const next = await nextPaymentVersion({ payment, me: B.address, business: createAutoBusiness() });
    const reaction = await b.sequence({ payment: next!, readVersion: create.cid });
    return { A, B, a, sideA, payment, create, accepted, reaction };
  }

  it('waits for that response and is committed, not answered `wait`', async () => {
    const gate = responseGate();
    const { A, a, sideA, payment, create, accepted, reaction } = await createThenReact(
      [0x31, 0x32],
      gate.verifier,
    );

    // Both reach A in order; A is still checking the response when it decides the request.
    const { response, request, settled } = await responseThenRequest(
      a,
      accepted.responseJws,
      reaction.requestJws,
    );
    expect(settled()).toBe(false);
    expect(gate.held()).toBe(1);
    expect(a.waitingRequests).toBe(1);

    gate.release();
    expect(await response).toMatchObject({ kind: 'final', status: 'success', cid: create.cid });
    const handled = await request;
    expect(handled.outcome).toMatchObject({ kind: 'committed', status: 'success' });
    expect(decodeResponse(verifyJws(handled.responseJws, A.key.publicKey))).toMatchObject({
      cid: reaction.cid,
      status: 'success',
    });
    expect(a.waitingRequests).toBe(0);
    expect((await a.head(payment.reference_id))?.version).toBe(reaction.cid);
    expect(await sideA.store.checkIntegrity()).toEqual([]);
  });

  it('waits once: if the version is still missing after the responses it waited for, it is answered `wait`', async () => {
    const gate = responseGate();
    const { A, B, a, reaction } = await createThenReact([0x35, 0x36], gate.verifier);
    // Two more commands of A, accepted by B, whose responses reach A before and after the
    // request; the response to the command the request reads never does.
    const sideB = await tempSqliteStore();
    disposers.push(sideB.dispose);
    const b = await coreOfParty(B, A, sideB.store);
    const [q1, q2] = [
      await a.sequence({ payment: paymentOf(A, B, 101) }),
      await a.sequence({ payment: paymentOf(A, B, 102) }),
    ];
    const [r1, r2] = [await b.handleRequest(q1.requestJws), await b.handleRequest(q2.requestJws)];

    const {
      response: first,
      request,
      settled,
    } = await responseThenRequest(a, r1.responseJws, reaction.requestJws);
    expect(a.waitingRequests).toBe(1);
    const second = a.handleResponse(r2.responseJws);
    while (gate.held() < 2) await nextTurn();

    // The first response is applied; the read version is still missing while the second one is
    // still being checked: the request does not wait again.
    gate.releaseOldest();
    const answered = await request;
    expect(settled()).toBe(true);
    expect(gate.held()).toBe(1);
    expect(a.waitingRequests).toBe(0);
    expect(decodeResponse(verifyJws(answered.responseJws, A.key.publicKey))).toMatchObject({
      cid: reaction.cid,
      status: 'failure',
      error: { code: 'wait', protocol_error: true },
    });
    gate.release();
    expect(await first).toMatchObject({ kind: 'final', status: 'success' });
    expect(await second).toMatchObject({ kind: 'final', status: 'success' });
    expect(a.waitingRequests).toBe(0);
  });

  it('is answered `wait` at once when no response is on its way (nothing to wait for)', async () => {
    const { A, B, a, sideA, accepted, reaction } = await createThenReact([0x33, 0x34]);

    // The response was lost with its connection: A has not received it.
    const early = await a.handleRequest(reaction.requestJws);
    expect(decodeResponse(verifyJws(early.responseJws, A.key.publicKey))).toMatchObject({
      cid: reaction.cid,
      status: 'failure',
      error: { code: 'wait', protocol_error: true },
    });
    expect(await sideA.store.findCommand(B.address, reaction.cid)).toBeUndefined();

    // After the response (a resend on the next connection) the same request is committed.
    await a.handleResponse(accepted.responseJws);
    const later = await a.handleRequest(reaction.requestJws);
    expect(later.outcome).toMatchObject({ kind: 'committed', status: 'success' });
  });
});
