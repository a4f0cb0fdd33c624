/**
 * A failed commit makes the channel read its pending commands again from the outbox. A command
 * whose final response is applied in memory, and whose own commit is still under way then, is
 * no longer pending: the reload must not bring it back (its outbox row is only settled by that
 * commit). Brought back, it stays pending once its commit is durable: a resend of its response
 * is applied a second time (a duplicate commit, which fails the whole batch and starts the next
 * reload), and the command is never final for its tracker (the stuck state seen after a burst,
 * a SIGKILL and a restart under load).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentObject } from '../../src/business/index.js';
import type { ChannelCore } from '../../src/channel/channel-core.js';
import { ParleyError } from '../../src/errors.js';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import type { CommitItem, ParleyStore } from '../../src/store/types.js';
import { coreOfParty, tempSqliteStore } from '../helpers/parties.js';
import { type Party, party } from '../sync/signed-histories.js';

/** The real store; while `holding`, its commits wait for `release()` or fail with `failHeld()`. */
function gatedCommits(store: ParleyStore) {
  const waiting: Array<{ go: () => void; fail: (err: unknown) => void }> = [];
  const gate = { holding: false };
  const commit = (items: readonly CommitItem[]): Promise<void> => {
    if (!gate.holding) return store.commit(items);
    return new Promise<void>((resolve, reject) => {
      waiting.push({ go: () => store.commit(items).then(resolve, reject), fail: reject });
    });
  };
  const gated = new Proxy(store, {
    get(target, key) {
      if (key === 'commit') return commit;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: gated,
    gate,
    held: () => waiting.length,
    release() {
      gate.holding = false;
      for (const w of waiting.splice(0)) w.go();
    },
    failHeld() {
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

async function until(check: () => boolean): Promise<void> {
  while (!check()) await nextTurn();
}

function createOf(A: Party, B: Party, amount: number) {
  return {
    payment: createPaymentObject({
      me: A.address,
      meSubaddressHex: '0000000000000001',
      to: B.address,
      toSubaddressHex: '0000000000000002',
      amount,
      currency: 'TIK',
    }),
  };
}

describe('reading the pending commands again after a failed commit', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  async function pair(bytes: [number, number]) {
    const [A, B] = [party(bytes[0]), party(bytes[1])];
    const [sideA, sideB] = [await tempSqliteStore(), await tempSqliteStore()];
    disposers.push(sideA.dispose, sideB.dispose);
    const gated = gatedCommits(sideA.store);
    const checks = countingVerifier();
    const a: ChannelCore = await coreOfParty(A, B, gated.store, checks.verifier);
    const b = await coreOfParty(B, A, sideB.store);
    return { A, B, a, b, gated, checks };
  }

  it('does not bring back a command whose final response is being committed', async () => {
    const { A, B, a, b, gated, checks } = await pair([0x81, 0x82]);
    const x1 = await a.sequence(createOf(A, B, 1));
    const x2 = await a.sequence(createOf(A, B, 2));
    const r1 = (await b.handleRequest(x1.requestJws)).responseJws;
    const r2 = (await b.handleRequest(x2.requestJws)).responseJws;

    gated.gate.holding = true;
    const first = a.handleResponse(r1);
    await until(() => gated.held() === 1);
    // The receiving order is busy (waiting for the held commit) while x2's response arrives:
    // x2 is applied in memory after x1's commit failed, before the reload reads the outbox.
    const busy = a.exclusive(async () => undefined);
    const second = a.handleResponse(r2);
    await until(() => checks.checked() === 2);
    await nextTurn(); // its decision is queued behind `busy`
    gated.failHeld();
    await expect(first).rejects.toThrow();
    await until(() => gated.held() === 1); // x2's commit, held
    await busy;
    await until(() => a.isPending(x1.cid)); // the reload ran
    expect(a.isPending(x1.cid)).toBe(true); // its commit failed: pending again
    expect(a.isPending(x2.cid)).toBe(false);

    gated.release();
    expect(await second).toMatchObject({ kind: 'final', cid: x2.cid, status: 'success' });
    // A resend of x2's response (the peer replays it) is a duplicate, never applied again.
    expect(await a.handleResponse(r2)).toEqual({ kind: 'duplicate', cid: x2.cid });
    expect(await a.handleResponse(r1)).toMatchObject({ kind: 'final', cid: x1.cid, status: 'success' });
    expect(a.pending()).toEqual([]);
  });

  it('keeps the lock of a command still being registered', async () => {
    const { A, B, a, b, gated } = await pair([0x83, 0x84]);
    const x1 = await a.sequence(createOf(A, B, 1));
    const r1 = (await b.handleRequest(x1.requestJws)).responseJws;
    gated.gate.holding = true;
    const first = a.handleResponse(r1);
    await until(() => gated.held() === 1);
    // x2 passes its checks (its lock taken) and waits, behind x1's commit, to be stored.
    const cid2 = 'ab'.repeat(16);
    const x2 = a.sequence({ ...createOf(A, B, 2), cid: cid2 });
    await until(() => a.isPending(cid2));
    gated.failHeld();
    await expect(first).rejects.toThrow();
    gated.release();
    const sent = await x2;
    await a.exclusive(async () => undefined);
    expect(a.isPending(sent.cid)).toBe(true);
    const r2 = (await b.handleRequest(sent.requestJws)).responseJws;
    expect(await a.handleResponse(r2)).toMatchObject({ kind: 'final', cid: sent.cid, status: 'success' });
  });
});
