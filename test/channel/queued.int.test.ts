/**
 * `Channel.submit`: `queued` resolves only once the command is in the outbox (real SQLite store,
 * its outbox writes held in front of the database until the test releases them), and a command
 * the store refuses rejects `queued` and `outcome$` with the store's code, without an unhandled
 * rejection for a caller that only watches one of them.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createPaymentObject } from '../../src/business/index.js';
import { createChannel } from '../../src/channel/channel.js';
import { ParleyError } from '../../src/errors.js';
import type { OutboxRecord, ParleyStore } from '../../src/store/types.js';
import { coreOfParty, tempSqliteStore } from '../helpers/parties.js';
import { party } from '../sync/signed-histories.js';

/** The real store, with `enqueue` held until `release()` or refused by `refuse()`. */
function gatedOutbox(store: ParleyStore) {
  const waiting: Array<{ go: () => void; fail: (err: Error) => void }> = [];
  const enqueue = (record: OutboxRecord): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ go: () => store.enqueue(record).then(resolve, reject), fail: reject });
    });
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
    release: () => {
      for (const w of waiting.splice(0)) w.go();
    },
    refuse: () => {
      for (const w of waiting.splice(0)) w.fail(new ParleyError('STORE_UNAVAILABLE', 'disk full'));
    },
  };
}

describe('Channel.submit: queued (durable) apart from the outcome', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0).reverse()) await d();
  });

  async function setup() {
    const [A, B] = [party(0x63), party(0x64)];
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const gate = gatedOutbox(side.store);
    const channel = createChannel({}, { core: await coreOfParty(A, B, gate.store) });
    disposers.push(() => channel.close());
    const payment = () =>
      createPaymentObject({
        me: A.address,
        meSubaddressHex: '0000000000000001',
        to: B.address,
        toSubaddressHex: '0000000000000002',
        amount: 5,
        currency: 'TIK',
      });
    return { gate, channel, payment, store: side.store, peer: B.address };
  }

  it('resolves queued once the command is in the outbox, with no connection to the peer', async () => {
    const { gate, channel, payment, store, peer } = await setup();
    const submitted = channel.submit({ payment: payment() });
    let settled = false;
    void submitted.queued.then(() => {
      settled = true;
    });
    while (gate.held() === 0) await nextTurn();
    // The outbox write is under way, not done: nothing may say "queued" yet.
    for (let i = 0; i < 20; i++) await nextTurn();
    expect(settled).toBe(false);
    gate.release();
    const { cid, referenceId } = await submitted.queued;
    expect(referenceId).toBe(submitted.referenceId);
    expect((await store.outbox(peer)).map((r) => r.cid)).toEqual([cid]);
    expect(channel.inflight).toBe(1);
  });

  it('rejects queued and outcome$ with the store code when the outbox write fails; stores nothing', async () => {
    const { gate, channel, payment, store, peer } = await setup();
    const watched = channel.submit({ payment: payment() });
    // Only the outcome is watched here: its `queued` must not become an unhandled rejection.
    const outcomeOnly = channel.submit({ payment: payment() }).outcome$;
    while (gate.held() < 2) await nextTurn();
    gate.refuse();
    await expect(watched.queued).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(firstValueFrom(watched.outcome$)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(firstValueFrom(outcomeOnly)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(await store.outbox(peer)).toEqual([]);
    expect(channel.inflight).toBe(0);
  });

  it('rejects queued with STORE_LEASE_LOST on a suspended channel, before anything is stored', async () => {
    const { gate, channel, payment } = await setup();
    channel.suspend(new ParleyError('STORE_LEASE_LOST', 'another replica'));
    const submitted = channel.submit({ payment: payment() });
    await expect(submitted.queued).rejects.toMatchObject({ code: 'STORE_LEASE_LOST' });
    expect(gate.held()).toBe(0);
  });
});
