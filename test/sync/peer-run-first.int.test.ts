/**
 * One repair at a time per channel, whoever leads: a run this node wants to lead while the
 * peer's run is in progress here waits for it to end (a wiped node's `diverged` run would
 * otherwise fetch what the peer is pushing, and the peer's push would find it `known`). Two
 * real SQLite stores; the two `ChannelSync`s talk over an in-memory, ordered link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProtocolServer } from '../../src/protocol/index.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { ParleyStore } from '../../src/store/types.js';
import {
  type ChannelSync,
  createChannelSync,
  type ResyncEvent,
  type SyncLink,
} from '../../src/sync/resync.js';
import { createStoreFixture, type StoreFixture } from '../helpers/store.js';
import { commitItemsFor, memoryLink, serialExclusive } from './in-memory.js';
import { buildPayment, type Party, party } from './signed-histories.js';

const N = 24;

describe('a run waits for the peer’s run in progress', () => {
  let fx: StoreFixture;
  let fy: StoreFixture;
  let storeX: ParleyStore;
  let storeY: ParleyStore;
  beforeAll(async () => {
    [fx, fy] = await Promise.all([createStoreFixture('sqlite'), createStoreFixture('sqlite')]);
    [storeX, storeY] = await Promise.all([fx.open(), fy.open()]);
  });
  afterAll(async () => {
    await fx?.dispose();
    await fy?.dispose();
  });

  it('a wiped node asked to run while the peer rebuilds it runs after, finds nothing to do, and nothing moves twice', async () => {
    const X = party(0x51);
    const Y = party(0x52);
    await storeX.upsertPeer({ address: Y.address, publicKeyHex: Y.key.publicKey.hex });
    await storeY.upsertPeer({ address: X.address, publicKeyHex: X.key.publicKey.hex });
    const repoX = createSyncRepository(storeX);
    for (let i = 0; i < N; i++) await repoX.commit(commitItemsFor(await buildPayment(X, Y, 2), X, Y));

    const make = (me: Party, peer: Party, store: ParleyStore): ChannelSync =>
      createChannelSync(
        { batchObjects: 2, window: 1 },
        {
          me: me.address,
          peer: peer.address,
          myKey: me.key,
          peerKey: peer.key.publicKey,
          isServer: isProtocolServer(me.address, peer.address),
          store: createSyncRepository(store),
          exclusive: serialExclusive(),
          isPending: () => false,
          dropPending: () => false,
        },
      );
    const sx = make(X, Y, storeX);
    const sy = make(Y, X, storeY);
    const lx: SyncLink = memoryLink((f) => sy.handleFrame(f, ly));
    const ly: SyncLink = memoryLink((f) => sx.handleFrame(f, lx));
    sx.attach(lx);
    sy.attach(ly);

    const seen: string[] = [];
    let yRun: ReturnType<ChannelSync['run']> | undefined;
    sy.events$.subscribe((e: ResyncEvent) => {
      if (e.type === 'resync_started' || e.type === 'resync_finished') seen.push(`${e.type}:${e.role}`);
      // Y asks for its own run (as `diverged` would) at its first rebuilt object.
      if (e.type === 'object_rebuilt' && !yRun) yRun = sy.run('diverged');
    });
    const xRun = await sx.run('connect');
    expect(xRun).toMatchObject({ outcome: 'repaired', objectsSent: N, differences: N });
    const y = await yRun!;
    expect(y).toMatchObject({ outcome: 'in_sync', differences: 0, objectsReceived: 0 });
    // Y's own run started only after the run X led had ended here.
    expect(seen).toEqual([
      'resync_started:follower',
      'resync_finished:follower',
      'resync_started:leader',
      'resync_finished:leader',
    ]);
    expect(await storeY.countOpenObjects(X.address)).toBe(N);
    await sx.close();
    await sy.close();
  });
});
