/**
 * An operator's restore of closed objects (PROTOCOL.md §7.6, `parley resync --all`) led by a node
 * put back from an old backup: it lacks some closed objects its peer holds and holds some the
 * peer lacks. With a peer whose hello names `restore-riblt`, the leader finds the differences
 * from the coded symbols of the two closed sets (bytes that grow with the differences, not the
 * sets) and repairs them; both ends hold the same signed logs. A difference too large for the
 * symbols falls back to list pages in the same run and still converges; a connection replaced in
 * the middle of the repair ends that run `aborted` and the next one compares by symbols again. Real SQLite files
 * (PostgreSQL with `PARLEY_TEST_DB=postgresql`), an in-memory link, real signatures.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { refHash } from '../../src/protocol/riblt.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { ParleyStore } from '../../src/store/types.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync } from '../../src/sync/resync.js';
import { createStoreFixture, type StoreFixture } from '../helpers/store.js';
import { usePg } from './helpers.js';
import {
  A,
  B,
  closedHeads,
  closedPayments,
  logPayments,
  reconcileBytes,
  type Wired,
  wire,
} from './restore-pair.js';
import { channelTables } from './restore-tables.js';
import { buildPayment, collidingSuffixes } from './signed-histories.js';

const SHARED = 300;
const ONLY_A = 6;
const ONLY_B = 4;
const OPTIONS = { restoreBatchObjects: 20, restoreObjectsPerS: 1e6 };

interface Side {
  db: StoreFixture;
  store: ParleyStore;
}

describe('on-demand restore of closed objects by coded symbols (old backup)', () => {
  const fixtures: StoreFixture[] = [];
  const syncs: ChannelSync[] = [];
  afterEach(async () => {
    for (const s of syncs.splice(0)) await s.close();
    for (const f of fixtures.splice(0)) await f.dispose();
  });

  async function side(me: typeof A, peer: typeof A): Promise<Side> {
    const db = await createStoreFixture(usePg ? 'postgresql' : 'sqlite');
    fixtures.push(db);
    const store = await db.open();
    await store.upsertPeer({ address: peer.address, publicKeyHex: peer.key.publicKey.hex });
    void me;
    return { db, store };
  }

  /** A's and B's stores; `shared` logged on both, `onlyA` on A, `onlyB` on B. */
  async function stores(
    shared: Awaited<ReturnType<typeof closedPayments>>,
    onlyA: typeof shared,
    onlyB: typeof shared,
  ) {
    const a = await side(A, B);
    const b = await side(B, A);
    await logPayments(a.store, A, B, [...shared, ...onlyA]);
    await logPayments(b.store, B, A, [...shared, ...onlyB]);
    return { a, b };
  }

  /** B (the old backup) leads an operator's restore with A; its restore runs' ids. */
  async function restoreFromB(
    a: Side,
    b: Side,
    methods?: string[],
  ): Promise<{ w: Wired; runIds: Set<unknown> }> {
    const w = wire(
      { a: createSyncRepository(a.store), b: createSyncRepository(b.store) },
      OPTIONS,
      undefined,
      methods,
    );
    syncs.push(w.sa, w.sb);
    // B is `sb`: its restore of A.
    const end = await w.sb.restore('on_demand');
    expect(end).toMatchObject({ role: 'leader', reason: 'on_demand', state: 'finished' });
    const runIds = new Set(
      w.frames.filter((f) => f.from === 'b' && f._ObjectType === 'SyncBegin').map((f) => f['run_id']),
    );
    return { w, runIds };
  }

  async function expectSameLogs(a: Side, b: Side, count: number): Promise<void> {
    const mine = await channelTables(b.db, A.address);
    const theirs = await channelTables(a.db, B.address);
    expect(new Set(mine.log.map((r) => r['ref'])).size).toBe(count);
    expect(mine.log).toEqual(
      theirs.log.map((r) => ({ ...r, direction: r['direction'] === 'outbound' ? 'inbound' : 'outbound' })),
    );
    expect(mine.versions).toEqual(theirs.versions);
    expect(mine.heads).toEqual(theirs.heads);
  }

  it('finds the differences from coded symbols, far fewer bytes than list pages, and ends with identical signed logs', async () => {
    const shared = await closedPayments(A, B, SHARED);
    const onlyA = await closedPayments(A, B, ONLY_A);
    const onlyB = await closedPayments(A, B, ONLY_B);

    const coded = await stores(shared, onlyA, onlyB);
    const byCodes = await restoreFromB(coded.a, coded.b);
    const status = byCodes.w.sb.restoreStatus();
    expect(status).toMatchObject({ moved: ONLY_A + ONLY_B, compared: SHARED + ONLY_A + ONLY_B });
    const runs = await createSyncRepository(coded.b.store).runs(A.address, 10);
    const restoreRuns = runs.filter((r) => r.detail['method'] === 'restore');
    expect(restoreRuns).toHaveLength(1);
    expect(restoreRuns[0]!.detail['reconcile']).toMatchObject({ method: 'riblt' });
    expect(restoreRuns[0]!.outcome).toBe('repaired');
    const codedBytes = reconcileBytes(byCodes.w.frames, byCodes.runIds);
    expect(await closedHeads(createSyncRepository(coded.b.store), A.address)).toEqual(
      await closedHeads(createSyncRepository(coded.a.store), B.address),
    );
    await expectSameLogs(coded.a, coded.b, SHARED + ONLY_A + ONLY_B);

    // The same sets, compared by list pages (a peer whose hello does not name `restore-riblt`).
    const listed = await stores(shared, onlyA, onlyB);
    const byList = await restoreFromB(listed.a, listed.b, ['list', 'riblt', 'restore']);
    expect(byList.w.sb.restoreStatus()).toMatchObject({ moved: ONLY_A + ONLY_B });
    expect(byList.w.frames.some((f) => f._ObjectType === 'SyncList')).toBe(true);
    expect(byCodes.w.frames.some((f) => f._ObjectType === 'SyncList')).toBe(false);
    const listBytes = reconcileBytes(byList.w.frames, byList.runIds);
    expect(codedBytes * 10).toBeLessThan(listBytes);
    await expectSameLogs(listed.a, listed.b, SHARED + ONLY_A + ONLY_B);
  }, 180_000);

  it('restores both of two closed objects whose ids share a key hash, one on each side, in one restore', async () => {
    // The coded symbols decode one key of each side with the same `hi`: taken for one object at
    // two heads, the restore (led by B) would push B's and end finished without A's.
    const [onA, onB] = collidingSuffixes(A.address);
    const x = await buildPayment(A, B, 5, onA);
    const y = await buildPayment(A, B, 5, onB);
    expect(refHash(x[0]!.payment.reference_id)).toBe(refHash(y[0]!.payment.reference_id));
    const f = await stores(await closedPayments(A, B, 10), [x], [y]);
    const restored = await restoreFromB(f.a, f.b);
    expect(restored.w.sb.restoreStatus()).toMatchObject({ state: 'finished', moved: 2, compared: 12 });
    const runs = await createSyncRepository(f.b.store).runs(A.address, 10);
    expect(runs.filter((r) => r.detail['method'] === 'restore').map((r) => r.detail['reconcile'])).toEqual([
      expect.objectContaining({ method: 'riblt' }),
    ]);
    await expectSameLogs(f.a, f.b, 12);
  }, 180_000);

  it('reads its closed set before its run takes its turn: a run of open objects meanwhile does not wait for it', async () => {
    const f = await stores(
      await closedPayments(A, B, 20),
      await closedPayments(A, B, 2),
      await closedPayments(A, B, 2),
    );
    // B's read of its closed objects waits until the test lets it go.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reading: () => void = () => undefined;
    const readStarted = new Promise<void>((resolve) => {
      reading = resolve;
    });
    const repoB = createSyncRepository(f.b.store);
    const gatedB: SyncStore = {
      ...repoB,
      closedObjects: async (...args: Parameters<NonNullable<SyncStore['closedObjects']>>) => {
        reading();
        await gate;
        return repoB.closedObjects!(...args);
      },
    };
    const w = wire({ a: createSyncRepository(f.a.store), b: gatedB }, OPTIONS);
    syncs.push(w.sa, w.sb);
    const restored = w.sb.restore('on_demand');
    await readStarted;
    // A run of B's (open objects: none differ) ends while the closed set is still being read.
    expect(await w.sb.run('test')).toMatchObject({ outcome: 'in_sync' });
    release();
    expect(await restored).toMatchObject({ state: 'finished', moved: 4 });
    await expectSameLogs(f.a, f.b, 24);
  }, 180_000);

  it('redoes the comparison by symbols after the connection is replaced in the middle of the repair, and converges', async () => {
    const f = await stores(
      await closedPayments(A, B, 40),
      await closedPayments(A, B, 6),
      await closedPayments(A, B, 4),
    );
    // The connection is replaced once the first repair is answered and the next is under way
    // (B's third push or fetch), whatever the store's speed.
    let replaced = false;
    let repairs = 0;
    const w = wire(
      { a: createSyncRepository(f.a.store), b: createSyncRepository(f.b.store) },
      { restoreBatchObjects: 1, restoreObjectsPerS: 1e6 },
      undefined,
      undefined,
      (frame) => {
        const repair = frame._ObjectType === 'SyncHistory' || frame._ObjectType === 'SyncGetHistory';
        if (replaced || frame.from !== 'b' || !repair || ++repairs < 3) return;
        replaced = true;
        queueMicrotask(() => w.reconnect());
      },
    );
    syncs.push(w.sa, w.sb);
    const end = await w.sb.restore('on_demand');
    expect(replaced).toBe(true);
    // An object whose answer the replaced connection lost is found equal the second time: not counted.
    expect(end.state).toBe('finished');
    expect(end.moved).toBeGreaterThanOrEqual(1);
    expect(end.moved).toBeLessThanOrEqual(10);
    // Each run compares the two whole sets: the count is their union, once.
    expect(end.compared).toBe(50);
    const runs = (await createSyncRepository(f.b.store).runs(A.address, 10)).filter(
      (r) => r.detail['method'] === 'restore' && r.detail['role'] === 'leader',
    );
    expect(runs.map((r) => r.outcome)).toEqual(['repaired', 'aborted']);
    for (const r of runs) expect(r.detail['reconcile']).toMatchObject({ method: 'riblt' });
    await expectSameLogs(f.a, f.b, 50);
  }, 180_000);

  it('falls back to list pages in the same run when the differences are too many for the symbols, and converges', async () => {
    const shared = await closedPayments(A, B, 10);
    // More differing pairs than the 1,024 symbols can decode (about 1.4 symbols a pair).
    const onlyA = await closedPayments(A, B, 1100);
    const f = await stores(shared, onlyA, await closedPayments(A, B, 2));
    const { w } = await restoreFromB(f.a, f.b);
    expect(w.sb.restoreStatus()).toMatchObject({ moved: 1102 });
    const runs = await createSyncRepository(f.b.store).runs(A.address, 10);
    const first = runs.filter((r) => r.detail['method'] === 'restore').at(-1)!;
    expect(first.detail['reconcile']).toMatchObject({ method: 'riblt→list' });
    expect(w.frames.some((x) => x._ObjectType === 'SyncList')).toBe(true);
    await expectSameLogs(f.a, f.b, 1112);
  }, 240_000);
});
