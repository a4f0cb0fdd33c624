/**
 * A resend of a command that arrives while the first copy is still being committed (common right
 * after a reconnect: every unanswered command is sent again) is answered only once the command is
 * durable. Answering it from memory before that would hand the peer a final response for a
 * command this node may never store (its commit fails, or the process dies first).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentObject } from '../../src/business/index.js';
import { ParleyError } from '../../src/errors.js';
import { decodeResponse, verifyJws } from '../../src/protocol/index.js';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import type { CommitItem, ParleyStore } from '../../src/store/types.js';
import { coreOfParty, tempSqliteStore } from '../helpers/parties.js';
import { party } from '../sync/signed-histories.js';

/**
 * The real store, with its commits held until `release()` or failed by `fail()` (a fault
 * injected in front of the database: nothing is written then).
 */
function heldCommits(store: ParleyStore): {
  store: ParleyStore;
  held(): number;
  release(): void;
  fail(): void;
} {
  const waiting: Array<{ go: () => void; fail: (err: unknown) => void }> = [];
  let hold = true;
  const commit = (items: readonly CommitItem[]): Promise<void> => {
    if (!hold) return store.commit(items);
    return new Promise<void>((resolve, reject) => {
      waiting.push({ go: () => store.commit(items).then(resolve, reject), fail: reject });
    });
  };
  // Every other method is the store's own, called on the store (its fields are private).
  const held = new Proxy(store, {
    get(target, key) {
      if (key === 'commit') return commit;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: held,
    held: () => waiting.length,
    release() {
      hold = false;
      for (const w of waiting.splice(0)) w.go();
    },
    fail() {
      hold = false;
      for (const w of waiting.splice(0)) w.fail(new ParleyError('STORE_UNAVAILABLE', 'disk gone'));
    },
  };
}

/** Checks signatures as the node does, and counts the JWS checked. */
function countingVerifier(): { verifier: JwsVerifier; checked(): number } {
  let checked = 0;
  return {
    verifier: {
      async verifyMany(items) {
        const results = await inThreadVerifier.verifyMany(items);
        checked += items.length;
        return results;
      },
    },
    checked: () => checked,
  };
}

describe('a resend of a command whose first copy is still being committed', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  /**
   * A sequences a create; B (commits held) gets it twice, the second copy during the commit.
   * Returns once B has decided the second copy: its signature is checked, and what follows
   * (the cid is in memory, the object in the cache) reads no store and takes a few turns.
   */
  async function twice(bytes: [number, number]) {
    const [A, B] = [party(bytes[0]), party(bytes[1])];
    const [sideA, sideB] = [await tempSqliteStore(), await tempSqliteStore()];
    disposers.push(sideA.dispose, sideB.dispose);
    const a = await coreOfParty(A, B, sideA.store);
    const gate = heldCommits(sideB.store);
    const checks = countingVerifier();
    const b = await coreOfParty(B, A, gate.store, checks.verifier);
    const payment = createPaymentObject({
      me: A.address,
      meSubaddressHex: '0000000000000001',
      to: B.address,
      toSubaddressHex: '0000000000000002',
      amount: 100,
      currency: 'TIK',
    });
    const create = await a.sequence({ payment });
    const first = b.handleRequest(create.requestJws);
    while (gate.held() === 0) await nextTurn();
    let secondSettled = false;
    const second = b.handleRequest(create.requestJws);
    void second.finally(() => {
      secondSettled = true;
    });
    while (checks.checked() < 2) await nextTurn();
    for (let i = 0; i < 20; i++) await nextTurn();
    return { A, B, b, sideB, gate, payment, create, first, second, secondSettled: () => secondSettled };
  }

  it('is answered once the command is durable, with the same signed response', async () => {
    const { A, B, sideB, gate, create, first, second, secondSettled } = await twice([0x71, 0x72]);
    expect(secondSettled()).toBe(false);
    expect(await sideB.store.findCommand(A.address, create.cid)).toBeUndefined();

    gate.release();
    const [original, resend] = await Promise.all([first, second]);
    expect(original.outcome).toMatchObject({ kind: 'committed', status: 'success' });
    expect(resend.outcome).toEqual({ kind: 'replayed', cid: create.cid });
    expect(resend.responseJws).toBe(original.responseJws);
    expect(decodeResponse(verifyJws(resend.responseJws, B.key.publicKey))).toMatchObject({
      cid: create.cid,
      status: 'success',
    });
    expect(await sideB.store.findCommand(A.address, create.cid)).toMatchObject({ status: 'success' });
  });

  it('is answered `wait`, as the first copy is, when the commit fails; nothing is stored', async () => {
    const { A, B, sideB, gate, create, first, second } = await twice([0x73, 0x74]);
    gate.fail();
    const [original, resend] = await Promise.all([first, second]);
    for (const handled of [original, resend]) {
      expect(handled.outcome).toMatchObject({ kind: 'protocol_error', code: 'wait' });
      expect(decodeResponse(verifyJws(handled.responseJws, B.key.publicKey))).toMatchObject({
        cid: create.cid,
        status: 'failure',
        error: { protocol_error: true, code: 'wait' },
      });
    }
    expect(await sideB.store.findCommand(A.address, create.cid)).toBeUndefined();
    expect(await sideB.store.checkIntegrity()).toEqual([]);
  });
});
