/**
 * Retention of the resync-run history (`pruneRunHistory`) in virtual time, over a real SQLite
 * store: prunes at start and every hour, keeps running runs, retries after a failure, never
 * overlaps two prunes, and stops when unsubscribed. And a node, when it starts, ends the runs a
 * stopped process left without an outcome and applies `sync.runHistoryRetentionMs`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { createVaspNode } from '../../src/node.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { PRUNE_RUNS_EVERY_MS, pruneRunHistory } from '../../src/sync/run-history.js';
import { virtualTime } from '../health/fakes.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { createStoreFixture, PEER, type StoreFixture } from '../helpers/store.js';

const HOUR = PRUNE_RUNS_EVERY_MS;
const counters = { objectsSent: 0, objectsReceived: 0, bytesSent: 0, bytesReceived: 0, rounds: 1 };

describe('resync run history retention (virtual time, SQLite)', () => {
  let fx: StoreFixture | undefined;
  afterEach(async () => {
    await fx?.dispose();
    fx = undefined;
  });

  async function setup() {
    fx = await createStoreFixture('sqlite');
    const store = await fx.open();
    const sync = createSyncRepository(store);
    const calls: Array<{ beforeMs: number; done: Promise<number> }> = [];
    /** The real repository, with every prune recorded so that the test can wait for it. */
    const recorded: Pick<SyncStore, 'pruneRuns'> = {
      pruneRuns(beforeMs) {
        const done = sync.pruneRuns(beforeMs);
        calls.push({ beforeMs, done });
        return done;
      },
    };
    return { store, sync, calls, recorded };
  }

  it('prunes the runs finished longer ago than the retention at start and every hour, never a running one', async () => {
    const { store, sync, calls, recorded } = await setup();
    const time = virtualTime();
    const t0 = time.now();
    const finished = async (finishedAtMs: number): Promise<number> => {
      const id = await sync.startRun({
        peer: PEER,
        reason: 'connect',
        startedAtMs: finishedAtMs - 10,
        detail: {},
      });
      await sync.finishRun(id, { ...counters, finishedAtMs, outcome: 'in_sync', detail: {} });
      return id;
    };
    await finished(t0 - 3 * HOUR);
    const recent = await finished(t0 - 1.5 * HOUR);
    const running = await sync.startRun({
      peer: PEER,
      reason: 'connect',
      startedAtMs: t0 - 5 * HOUR,
      detail: {},
    });
    const ids = async () => (await sync.runs(PEER, 10)).map((r) => r.id).sort((a, b) => a - b);

    const sub = pruneRunHistory(recorded, 2 * HOUR, { scheduler: time.scheduler });
    time.advance(0);
    expect(calls.map((c) => c.beforeMs)).toEqual([t0 - 2 * HOUR]);
    expect(await calls[0]!.done).toBe(1);
    expect(await ids()).toEqual([recent, running].sort((a, b) => a - b));

    time.advance(HOUR - 1);
    expect(calls).toHaveLength(1);
    time.advance(1);
    expect(calls.map((c) => c.beforeMs)).toEqual([t0 - 2 * HOUR, t0 - HOUR]);
    expect(await calls[1]!.done).toBe(1);
    expect(await ids()).toEqual([running]);

    sub.unsubscribe();
    time.advance(5 * HOUR);
    expect(calls).toHaveLength(2);
    await store.close();
  });

  it('with retention 0 schedules nothing', async () => {
    const { store, calls, recorded } = await setup();
    const time = virtualTime();
    const sub = pruneRunHistory(recorded, 0, { scheduler: time.scheduler });
    time.advance(3 * HOUR);
    expect(calls).toHaveLength(0);
    sub.unsubscribe();
    await store.close();
  });

  it('reports a failed prune and tries again at the next tick; a prune still running makes the tick a no-op', async () => {
    const time = virtualTime();
    const errors: unknown[] = [];
    const outcomes: Array<'fail' | 'hang' | number> = ['fail', 'hang'];
    let release: ((n: number) => void) | undefined;
    let calls = 0;
    const store: Pick<SyncStore, 'pruneRuns'> = {
      pruneRuns() {
        calls++;
        const next = outcomes.shift() ?? 0;
        if (next === 'fail') return Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'down'));
        if (next === 'hang') return new Promise<number>((resolve) => (release = resolve));
        return Promise.resolve(next);
      },
    };
    const sub = pruneRunHistory(store, HOUR, { scheduler: time.scheduler, onError: (e) => errors.push(e) });
    time.advance(0);
    await Promise.resolve();
    await Promise.resolve();
    expect(calls).toBe(1);
    expect(errors).toHaveLength(1);
    expect((errors[0] as ParleyError).code).toBe('STORE_UNAVAILABLE');

    time.advance(HOUR); // tried again: this one does not end
    expect(calls).toBe(2);
    time.advance(3 * HOUR); // three ticks while it runs: none starts another
    expect(calls).toBe(2);
    release!(0);
    await Promise.resolve();
    await Promise.resolve();
    time.advance(HOUR);
    expect(calls).toBe(3);
    expect(errors).toHaveLength(1);
    sub.unsubscribe();
  });

  it('a node started on a store with a run left by a killed process ends it aborted, and prunes by its setting', async () => {
    fx = await createStoreFixture('sqlite');
    const me = testIdentity(0x51);
    const peer = testIdentity(0x52);
    const seedStore = await fx.open();
    const seeded = createSyncRepository(seedStore);
    const now = Date.now();
    const left = await seeded.startRun({
      peer: peer.address,
      reason: 'connect',
      startedAtMs: now - 60_000,
      detail: { role: 'leader' },
    });
    const old = await seeded.startRun({
      peer: peer.address,
      reason: 'connect',
      startedAtMs: now - 3 * HOUR,
      detail: {},
    });
    await seeded.finishRun(old, {
      ...counters,
      finishedAtMs: now - 2 * HOUR,
      outcome: 'in_sync',
      detail: {},
    });
    await seedStore.close();

    const node = await createVaspNode({
      ...nodeConfig(me, fx.url, [{ identity: peer }]),
      sync: { runHistoryRetentionMs: HOUR },
    });
    try {
      // Pruned on the node's first tick (real time: it only has to come).
      await vi.waitFor(async () => {
        expect((await node.resyncRuns(peer.address, 10)).map((r) => r.id)).toEqual([left]);
      });
      const [run] = await node.resyncRuns(peer.address, 1);
      expect(run).toMatchObject({
        outcome: 'aborted',
        detail: { role: 'leader', interrupted: true, error: 'SYNC_ABORTED' },
      });
      expect(run!.finishedAtMs).toBeGreaterThanOrEqual(now);
    } finally {
      await node.close();
    }
  });
});
