import { afterEach, describe, expect, it } from 'vitest';
import { createHealthRepository } from '../../src/store/health-repository.js';
import { tempSqliteStore } from '../helpers/parties.js';
import { createStoreFixture, HAVE_PG, type StoreFixture } from '../helpers/store.js';

describe('health history on SQLite (health_event table)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function repo() {
    const temp = await tempSqliteStore();
    cleanups.push(temp.dispose);
    return { repo: createHealthRepository(temp.store), store: temp.store };
  }

  it('appends in order and reads back newest first, filtered and paged', async () => {
    const { repo: health } = await repo();
    await health.append([
      { peer: 'p', kind: 'epoch_seen', fromState: null, toState: null, detail: { epoch: 'e1' }, atMs: 1000 },
      {
        peer: 'p',
        kind: 'transition',
        fromState: 'unknown',
        toState: 'healthy',
        detail: { phi: 0 },
        atMs: 2000,
      },
      { peer: 'q', kind: 'transition', fromState: 'unknown', toState: 'down', detail: {}, atMs: 3000 },
    ]);
    await health.append([
      {
        peer: 'p',
        kind: 'peer_state_lost',
        fromState: null,
        toState: null,
        detail: { epoch: 'e2', previousEpoch: 'e1' },
        atMs: 4000,
      },
    ]);
    const all = await health.history();
    expect(all.map((r) => r.kind)).toEqual(['peer_state_lost', 'transition', 'transition', 'epoch_seen']);
    expect(all[0]).toMatchObject({ peer: 'p', detail: { epoch: 'e2', previousEpoch: 'e1' }, atMs: 4000 });
    const forP = await health.history({ peer: 'p', kinds: ['transition'] });
    expect(forP).toEqual([
      expect.objectContaining({
        peer: 'p',
        fromState: 'unknown',
        toState: 'healthy',
        detail: { phi: 0 },
        atMs: 2000,
      }),
    ]);
    const page = await health.history({ limit: 2 });
    const next = await health.history({ limit: 2, beforeId: page.at(-1)!.id });
    expect([...page, ...next].map((r) => r.atMs)).toEqual([4000, 3000, 2000, 1000]);
    expect(await health.history({ limit: 0 })).toEqual([]);
  });

  it('lists the epochs seen from a peer, oldest first', async () => {
    const { repo: health } = await repo();
    expect(await health.epochs('p')).toEqual([]);
    await health.append([
      { peer: 'p', kind: 'epoch_seen', fromState: null, toState: null, detail: { epoch: 'e1' }, atMs: 1 },
      { peer: 'q', kind: 'epoch_seen', fromState: null, toState: null, detail: { epoch: 'x' }, atMs: 2 },
      { peer: 'p', kind: 'zombie_refused', fromState: null, toState: null, detail: { epoch: 'e0' }, atMs: 3 },
      {
        peer: 'p',
        kind: 'peer_state_lost',
        fromState: null,
        toState: null,
        detail: { epoch: 'e2' },
        atMs: 4,
      },
    ]);
    expect(await health.epochs('p')).toEqual(['e1', 'e2']);
    expect(await health.epochs('q')).toEqual(['x']);
  });

  it('writes between group commits without blocking them, and fails with STORE_CLOSED after close', async () => {
    const { repo: health, store } = await repo();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        health.append([
          { peer: 'p', kind: 'transition', fromState: null, toState: 'healthy', detail: { i }, atMs: i },
        ]),
      ),
    );
    expect(await health.history({ limit: 100 })).toHaveLength(20);
    await store.close();
    await expect(health.history()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    await expect(
      health.append([{ peer: 'p', kind: 'x', fromState: null, toState: null, detail: {}, atMs: 0 }]),
    ).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('refuses a store that openStore did not make', () => {
    expect(() => createHealthRepository({} as never)).toThrow(
      expect.objectContaining({ code: 'STORE_INVALID_INPUT' }),
    );
  });
});

for (const engine of HAVE_PG ? (['sqlite', 'postgresql'] as const) : (['sqlite'] as const)) {
  describe(`health history pruning (${engine})`, () => {
    let fixture: StoreFixture | undefined;
    afterEach(async () => {
      await fixture?.dispose();
    });

    it('deletes the records older than the cut-off, except the epoch records and abandoned commands, and counts them', async () => {
      fixture = await createStoreFixture(engine);
      const health = createHealthRepository(await fixture.open());
      const at = (kind: string, atMs: number, detail: Record<string, unknown> = {}) => ({
        peer: 'p',
        kind,
        fromState: null,
        toState: null,
        detail,
        atMs,
      });
      await health.append([
        at('epoch_seen', 1_000, { epoch: 'e1' }),
        at('transition', 2_000),
        at('peer_state_lost', 3_000, { epoch: 'e2' }),
        at('diverged', 4_000),
        at('command_abandoned', 4_500, { cid: 'c1' }),
        at('peer_behind', 4_600),
        at('transition', 5_000),
      ]);
      expect(await health.prune(5_000)).toBe(3);
      expect((await health.history()).map((r) => [r.kind, r.atMs])).toEqual([
        ['transition', 5_000],
        ['command_abandoned', 4_500],
        ['peer_state_lost', 3_000],
        ['epoch_seen', 1_000],
      ]);
      expect(await health.epochs('p')).toEqual(['e1', 'e2']);
      expect(await health.prune(5_000)).toBe(0);
      // New records still get new ids after a prune.
      await health.append([at('transition', 6_000)]);
      const [newest, previous] = await health.history({ limit: 2 });
      expect(newest!.id).toBeGreaterThan(previous!.id);
    });

    it('trims one peer and kind to its newest records, and keeps epoch_reset among the epochs', async () => {
      fixture = await createStoreFixture(engine);
      const health = createHealthRepository(await fixture.open());
      const rec = (peer: string, kind: string, atMs: number, detail: Record<string, unknown> = {}) => ({
        peer,
        kind,
        fromState: null,
        toState: null,
        detail,
        atMs,
      });
      await health.append([
        rec('p', 'epoch_seen', 1, { epoch: 'e1' }),
        rec('p', 'peer_state_lost', 2, { epoch: 'e2' }),
        ...[3, 4, 5, 6, 7].map((t) => rec('p', 'zombie_refused', t, { epoch: 'e1' })),
        rec('q', 'zombie_refused', 8),
        rec('p', 'epoch_reset', 9, { epoch: 'e1', previousEpoch: 'e2', via: 'admin' }),
      ]);
      expect(await health.trim('p', 'zombie_refused', 2)).toBe(3);
      expect((await health.history({ kinds: ['zombie_refused'] })).map((r) => [r.peer, r.atMs])).toEqual([
        ['q', 8],
        ['p', 7],
        ['p', 6],
      ]);
      expect(await health.trim('p', 'zombie_refused', 2)).toBe(0);
      expect(await health.trim('q', 'zombie_refused', 0)).toBe(1);
      expect(await health.prune(100)).toBe(2);
      expect(await health.epochs('p')).toEqual(['e1', 'e2', 'e1']);
    });
  });
}
