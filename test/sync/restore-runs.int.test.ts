/**
 * The closed-object restore's runs (PROTOCOL.md §7.6) between two channel syncs on real SQLite
 * files (PostgreSQL with `PARLEY_TEST_DB=postgresql`) over an in-memory link, with real
 * signatures: a run is bounded on either side (a leader that holds none of the follower's many
 * closed objects goes through them `restoreRunObjects` at a time); a cursor that cannot be read
 * shows the restore `waiting` with the store's code until the next connection; the sync's close
 * ends a paced wait at once and waits for the restore loop, which writes nothing after.
 */
import { filter, firstValueFrom, VirtualTimeScheduler } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { RestoreCursor, SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, RestoreEvent } from '../../src/sync/resync.js';
import { openTwoStores } from './in-memory.js';
import { A, B, closedHeads, seedClosed, wire } from './restore-pair.js';

describe('closed-object restore runs (in-memory link, real stores)', () => {
  let stores: Awaited<ReturnType<typeof openTwoStores>> | undefined;
  const closing: ChannelSync[] = [];
  beforeEach(async () => {
    stores = await openTwoStores();
    await stores.a.upsertPeer({ address: B.address, publicKeyHex: B.key.publicKey.hex });
    await stores.b.upsertPeer({ address: A.address, publicKeyHex: A.key.publicKey.hex });
  });
  afterEach(async () => {
    for (const s of closing.splice(0)) await s.close();
    await stores?.dispose();
    stores = undefined;
  });

  it('bounds each run by restoreRunObjects when the leader holds none of the follower’s closed objects', async () => {
    const a = createSyncRepository(stores!.a);
    const b = createSyncRepository(stores!.b);
    await seedClosed(stores!.b, B, A, 23);
    const w = wire({ a, b }, { restoreRunObjects: 10, restoreBatchObjects: 4, restoreObjectsPerS: 1e6 });
    closing.push(w.sa, w.sb);

    const end = await w.sa.restore('on_demand');
    expect(end).toMatchObject({ state: 'finished', moved: 23, compared: 23 });
    expect(await closedHeads(a, B.address)).toEqual(await closedHeads(b, A.address));

    // Three runs or more, none of which listed more than 10 of B's closed objects.
    const begins = w.frames.filter((f) => f._ObjectType === 'SyncBegin' && f['method'] === 'restore');
    expect(begins.length).toBeGreaterThanOrEqual(3);
    for (const begin of begins) {
      const listed = w.frames
        .filter((f) => f._ObjectType === 'SyncList' && f['run_id'] === begin['run_id'])
        .reduce((n, f) => n + (f['entries'] as unknown[]).length, 0);
      expect(listed).toBeLessThanOrEqual(10);
      const asked = w.frames.filter(
        (f) => f._ObjectType === 'SyncListRequest' && f['run_id'] === begin['run_id'],
      );
      for (const req of asked) expect(req['limit']).toBeLessThanOrEqual(10);
    }
  });

  it('shows a restore whose cursor cannot be read as waiting with the store’s code, and resumes it at the next connection', async () => {
    const real = createSyncRepository(stores!.a);
    const b = createSyncRepository(stores!.b);
    await seedClosed(stores!.b, B, A, 5);
    const now = Date.now();
    const left: RestoreCursor = {
      peer: B.address,
      reason: 'on_demand',
      after: null,
      compared: 0,
      moved: 0,
      startedAtMs: now,
      updatedAtMs: now,
      finishedAtMs: null,
    };
    await real.saveRestoreCursor!(left);
    let failReads = 1;
    const a: SyncStore = {
      ...real,
      restoreCursor(peer) {
        if (failReads-- > 0) return Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'disk gone'));
        return real.restoreCursor!(peer);
      },
    };
    const options = { restoreRunObjects: 10, restoreBatchObjects: 4, restoreObjectsPerS: 1e6 };
    // The connection reads the cursor (a store read: the event comes after `wire` returns).
    const w = wire({ a, b }, options);
    closing.push(w.sa, w.sb);
    const event: RestoreEvent = await firstValueFrom(w.sa.restore$);
    expect(event).toMatchObject({ type: 'restore_progress', state: 'waiting', error: 'STORE_UNAVAILABLE' });
    expect(w.sa.restoreStatus()).toMatchObject({
      role: 'leader',
      state: 'waiting',
      error: 'STORE_UNAVAILABLE',
    });

    const finished = firstValueFrom(w.sa.restore$.pipe(filter((e) => e.state === 'finished')));
    w.reconnect();
    expect(await finished).toMatchObject({ role: 'leader', reason: 'on_demand', moved: 5, compared: 5 });
    expect(await closedHeads(a, B.address)).toEqual(await closedHeads(b, A.address));
  });

  it('ends a paced wait at close and waits for the restore loop, which writes nothing after the close', async () => {
    const real = createSyncRepository(stores!.a);
    const b = createSyncRepository(stores!.b);
    await seedClosed(stores!.b, B, A, 4);
    let closedAt: number | undefined;
    const lateWrites: string[] = [];
    const a: SyncStore = {
      ...real,
      saveRestoreCursor(c) {
        if (closedAt !== undefined) lateWrites.push('restore_cursor');
        return real.saveRestoreCursor!(c);
      },
      commit(items) {
        if (closedAt !== undefined) lateWrites.push('commit');
        return real.commit(items);
      },
    };
    // Virtual time that never advances: the second batch waits for its pace for good.
    const clock = new VirtualTimeScheduler();
    const w = wire({ a, b }, { restoreRunObjects: 10, restoreBatchObjects: 1, restoreObjectsPerS: 1 }, clock);
    closing.push(w.sb);
    const moved = firstValueFrom(w.sa.restore$.pipe(filter((e) => e.movedNow > 0)));
    const done = w.sa.restore('on_demand');
    observedInTest(done);
    await moved;

    await w.sa.close();
    closedAt = Date.now();
    // The loop ended before the close returned: its state says why.
    expect(w.sa.restoreStatus()).toMatchObject({ role: 'leader', state: 'waiting', error: 'SYNC_ABORTED' });
    await expect(done).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    // What the close left settles with nothing more written (the stores are read after a turn).
    await new Promise((resolve) => setImmediate(resolve));
    expect(lateWrites).toEqual([]);
    const cursor = await real.restoreCursor!(B.address);
    expect(cursor).toMatchObject({ moved: 1, finishedAtMs: null });
  });
});

/** A promise the test awaits later: its rejection meanwhile is not unhandled. */
function observedInTest(p: Promise<unknown>): void {
  p.catch(() => undefined);
}
