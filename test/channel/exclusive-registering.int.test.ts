/**
 * `exclusive` (what resync writes through, a fork's replacement among them) runs only once every
 * command of mine past its checks is in the outbox. A replacement that ran between a command's
 * checks and its outbox row would not see the row, so a command reading a version of the losing
 * branch would keep its outbox row and be resent forever. Real SQLite store; its outbox writes
 * held in front of the database until the test releases them.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentObject } from '../../src/business/index.js';
import type { OutboxRecord, ParleyStore } from '../../src/store/types.js';
import { coreOfParty, tempSqliteStore } from '../helpers/parties.js';
import { party } from '../sync/signed-histories.js';

/** The real store with `enqueue` held until `release()`. */
function heldOutbox(store: ParleyStore): { store: ParleyStore; held(): number; release(): void } {
  const waiting: Array<() => void> = [];
  let hold = true;
  const enqueue = (record: OutboxRecord): Promise<void> => {
    if (!hold) return store.enqueue(record);
    return new Promise<void>((resolve, reject) => {
      waiting.push(() => store.enqueue(record).then(resolve, reject));
    });
  };
  const proxy = new Proxy(store, {
    get(target, key) {
      if (key === 'enqueue') return enqueue;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store: proxy,
    held: () => waiting.length,
    release() {
      hold = false;
      for (const go of waiting.splice(0)) go();
    },
  };
}

describe('exclusive and a command being registered', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('waits for the command to reach the outbox, then runs with its row there', async () => {
    const [A, B] = [party(0x61), party(0x62)];
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const gate = heldOutbox(side.store);
    const core = await coreOfParty(A, B, gate.store);
    const payment = createPaymentObject({
      me: A.address,
      meSubaddressHex: '0000000000000001',
      to: B.address,
      toSubaddressHex: '0000000000000002',
      amount: 5,
      currency: 'TIK',
    });
    const sequenced = core.sequence({ payment });
    while (gate.held() === 0) await nextTurn();

    let outboxSeen: string[] | undefined;
    const exclusive = core.exclusive(async () => {
      outboxSeen = (await side.store.outbox(B.address)).map((r) => r.cid);
    });
    for (let i = 0; i < 20; i++) await nextTurn();
    expect(outboxSeen).toBeUndefined();

    gate.release();
    const { cid } = await sequenced;
    await exclusive;
    expect(outboxSeen).toEqual([cid]);
  });
});
