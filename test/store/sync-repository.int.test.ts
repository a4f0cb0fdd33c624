/**
 * The sync repository's batched reads (whole histories, heads, known cids: one statement per
 * batch, a list bound as one parameter) agree with the per-object reads, and its upkeep of the
 * resync-run history (runs left by a stopped process, retention), on both engines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

function describeHistories(engine: StoreEngine): void {
  describe(`sync repository: histories (${engine})`, () => {
    let fx: StoreFixture | undefined;
    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    it('reads the signed logs of many objects at once, each in commit order, like history() one by one', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const refs = Array.from({ length: 1_100 }, (_, i) => `r${i}`); // more than one IN chunk
      await store.commit(refs.map((r, i) => commandItem({ cid: `a${i}`, referenceId: r, write: 'v1' })));
      // Interleave later commands of some objects, and a failed one, so that id order matters.
      await store.commit([
        commandItem({ cid: 'b7', referenceId: 'r7', read: 'v1', write: 'v2' }),
        commandItem({ cid: 'b3', referenceId: 'r3', read: 'v1', write: 'v2' }),
        commandItem({ cid: 'x7', referenceId: 'r7', read: 'v1', write: 'v2x', status: 'failure' }),
      ]);
      await store.commit([commandItem({ cid: 'c7', referenceId: 'r7', read: 'v2', write: 'v3' })]);
      await store.commit([
        commandItem({ cid: 'other', peer: 'someone-else', referenceId: 'r7', write: 'w1' }),
      ]);

      const wanted = [...refs, 'missing'];
      const batch = await sync.histories!(PEER, wanted);
      expect([...batch.keys()]).toEqual(wanted);
      expect(batch.get('missing')).toEqual([]);
      expect(batch.get('r7')!.map((c) => c.cid)).toEqual(['a7', 'b7', 'x7', 'c7']);
      for (const r of ['r0', 'r3', 'r7', 'r1099']) expect(batch.get(r)).toEqual(await store.history(PEER, r));
      expect((await store.history(PEER, 'r7')).map((c) => c.cid)).toEqual(['a7', 'b7', 'x7', 'c7']);
      expect(await sync.histories!(PEER, [])).toEqual(new Map());
      await store.close();
    });

    it('reads the heads of the known objects of a list, and which cids of a list are logged, for this peer only', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const refs = Array.from({ length: 1_100 }, (_, i) => `r${i}`);
      await store.commit(refs.map((r, i) => commandItem({ cid: `a${i}`, referenceId: r, write: 'v1' })));
      await store.commit([commandItem({ cid: 'b7', referenceId: 'r7', read: 'v1', write: 'v2' })]);
      await store.commit([
        commandItem({ cid: 'other', peer: 'someone-else', referenceId: 'q1', write: 'w1' }),
      ]);

      const heads = await sync.heads(PEER, [...refs, 'q1', 'missing', 'it\'s "quoted"']);
      expect(heads.size).toBe(1_100);
      expect(heads.get('r7')).toEqual(await store.head(PEER, 'r7'));
      expect(heads.get('r7')).toMatchObject({ headVersion: 'v2', versionCount: 2 });
      expect(heads.get('r1099')).toEqual(await store.head(PEER, 'r1099'));
      expect(heads.has('q1')).toBe(false);
      expect((await sync.heads('someone-else', ['q1', 'r7'])).get('q1')).toMatchObject({ headVersion: 'w1' });
      expect(await sync.heads(PEER, [])).toEqual(new Map());

      const known = await sync.knownCids(PEER, ['a0', 'b7', 'a1099', 'other', 'nope', 'a0']);
      expect([...known].sort()).toEqual(['a0', 'a1099', 'b7']);
      expect(await sync.knownCids(PEER, [])).toEqual(new Set());
      await store.close();
    });
  });
}

function describeRunHistory(engine: StoreEngine): void {
  describe(`sync repository: resync run history (${engine})`, () => {
    let fx: StoreFixture | undefined;
    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    const counters = { objectsSent: 1, objectsReceived: 2, bytesSent: 3, bytesReceived: 4, rounds: 5 };

    it('ends the runs a stopped process left without an outcome as aborted and interrupted, once', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const left = await sync.startRun({
        peer: PEER,
        reason: 'connect',
        startedAtMs: 1_000,
        detail: { runId: 'r1', role: 'leader' },
      });
      const other = await sync.startRun({
        peer: 'someone-else',
        reason: 'diverged',
        startedAtMs: 1_500,
        detail: { role: 'follower' },
      });
      const done = await sync.startRun({ peer: PEER, reason: 'connect', startedAtMs: 2_000, detail: {} });
      await sync.finishRun(done, {
        ...counters,
        finishedAtMs: 3_000,
        outcome: 'repaired',
        detail: { role: 'leader' },
      });

      expect(await sync.endInterruptedRuns(8_000, 'nobody')).toBe(0);
      expect(await sync.endInterruptedRuns(8_500, 'someone-else')).toBe(1); // one channel's only
      expect(await sync.endInterruptedRuns(9_000)).toBe(1);
      const runs = new Map((await sync.runs(undefined, 10)).map((r) => [r.id, r]));
      expect(runs.get(left)).toMatchObject({
        outcome: 'aborted',
        finishedAtMs: 9_000,
        startedAtMs: 1_000,
        detail: { runId: 'r1', role: 'leader', error: 'SYNC_ABORTED', interrupted: true },
      });
      expect(runs.get(other)).toMatchObject({
        outcome: 'aborted',
        finishedAtMs: 8_500,
        detail: { role: 'follower', interrupted: true },
      });
      expect(runs.get(done)).toMatchObject({
        outcome: 'repaired',
        finishedAtMs: 3_000,
        detail: { role: 'leader' },
      });
      expect(await sync.endInterruptedRuns(10_000)).toBe(0);
      // The process that ran it finishes it late (a frozen replica): the aborted record stays.
      await sync.finishRun(left, { ...counters, finishedAtMs: 11_000, outcome: 'repaired', detail: {} });
      expect((await sync.runs(undefined, 10)).find((r) => r.id === left)).toMatchObject({
        outcome: 'aborted',
        finishedAtMs: 9_000,
      });
      expect((await sync.runs(undefined, 10)).find((r) => r.id === left)!.finishedAtMs).toBe(9_000);
      await store.close();
    });

    it('prunes the runs finished before a time, never one still running', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const finished = async (startedAtMs: number, finishedAtMs: number): Promise<number> => {
        const id = await sync.startRun({ peer: PEER, reason: 'connect', startedAtMs, detail: {} });
        await sync.finishRun(id, { ...counters, finishedAtMs, outcome: 'in_sync', detail: {} });
        return id;
      };
      await finished(100, 1_000);
      const running = await sync.startRun({ peer: PEER, reason: 'connect', startedAtMs: 200, detail: {} });
      const recent = await finished(1_900, 2_000);
      const edge = await finished(1_200, 1_500);

      expect(await sync.pruneRuns(1_500)).toBe(1);
      expect((await sync.runs(PEER, 10)).map((r) => r.id).sort((x, y) => x - y)).toEqual(
        [running, recent, edge].sort((x, y) => x - y),
      );
      expect(await sync.pruneRuns(1_500)).toBe(0);
      expect(await sync.pruneRuns(10_000)).toBe(2);
      expect((await sync.runs(PEER, 10)).map((r) => r.id)).toEqual([running]);
      await store.close();
    });
  });
}

describeHistories('sqlite');
describeRunHistory('sqlite');
describe.skipIf(!HAVE_PG)('with PostgreSQL (TEST_PG_URL)', () => {
  describeHistories('postgresql');
  describeRunHistory('postgresql');
});
