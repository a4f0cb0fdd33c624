/**
 * The schema holds up at scale on both engines: the signed log goes past 2^31 commands (a
 * 32-bit INTEGER on PostgreSQL would stop there), and a page of `openObjects` is read from the
 * (peer, open, reference_id) index in byte order, not sorted from every open object of the peer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dialectFor } from '../../src/store/dialect.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

/** The first id past what a signed 32-bit column holds. */
const PAST_INT32 = 2 ** 31 + 7;

/** Rows of open objects inserted behind the store's back: enough for the planner to care. */
const OPEN_ROWS = 20_000;

/** The statement `openObjects` runs for a page after `after` (src/store/prisma-store.ts), with literals. */
function openObjectsPage(engine: StoreEngine, after: string, limit: number): string {
  const d = dialectFor(engine);
  const yes = engine === 'sqlite' ? '1' : 'true';
  return (
    'SELECT peer, reference_id, head_version, open, version_count FROM object_head ' +
    `WHERE peer = '${PEER}' AND open = ${yes} AND ${d.bytewise('reference_id')} > '${after}' ` +
    `ORDER BY ${d.bytewise('reference_id')} LIMIT ${limit}`
  );
}

function describeScale(engine: StoreEngine): void {
  describe(`store schema at scale (${engine})`, () => {
    let fx: StoreFixture | undefined;

    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    it('keeps committing, reading and checking the signed log once its ids pass 2^31', async () => {
      fx = await createStoreFixture(engine);
      let store = await fx.open();
      await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
      await store.close();
      // The next id of the signed log jumps past 2^31 (as after two billion commands).
      await fx.exec(
        engine === 'sqlite'
          ? `UPDATE sqlite_sequence SET seq = ${PAST_INT32 - 1} WHERE name = 'command_log'`
          : `SELECT setval('command_log_id_seq', ${PAST_INT32 - 1})`,
      );
      store = await fx.open();
      await store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })]);
      await store.commit([
        commandItem({ cid: 'c3', referenceId: 'r1', read: 'v2', write: 'v3x', status: 'failure' }),
        commandItem({ cid: 'c4', referenceId: 'r1', read: 'v2', write: 'v3' }),
        commandItem({ cid: 'c5', referenceId: 'r2', write: 'w1' }),
      ]);

      const ids = await fx.query<{ cid: string; id: number | string }>(
        'SELECT cid, id FROM command_log ORDER BY id',
      );
      expect(ids.map((r) => [r.cid, Number(r.id) >= PAST_INT32])).toEqual([
        ['c1', false],
        ['c2', true],
        ['c3', true],
        ['c4', true],
        ['c5', true],
      ]);
      // Chain order comes from the log ids, across the 2^31 boundary.
      expect((await store.versions(PEER, 'r1')).map((v) => v.version)).toEqual(['v1', 'v2', 'v3']);
      expect((await store.history(PEER, 'r1')).map((c) => c.cid)).toEqual(['c1', 'c2', 'c3', 'c4']);
      expect(await store.head(PEER, 'r1')).toMatchObject({ headVersion: 'v3', versionCount: 3 });
      expect((await store.openObjects(PEER, null, 10)).map((h) => h.referenceId)).toEqual(['r1', 'r2']);
      expect(await store.checkIntegrity()).toEqual([]);
    });

    it('records resync runs that moved more than 2^31 bytes', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      const sync = createSyncRepository(store);
      const id = await sync.startRun({ peer: PEER, reason: 'connect', startedAtMs: 1_000, detail: {} });
      await sync.finishRun(id, {
        finishedAtMs: 2_000,
        outcome: 'completed',
        objectsSent: 1,
        objectsReceived: 2,
        bytesSent: 3_000_000_000,
        bytesReceived: PAST_INT32,
        rounds: 4,
        detail: {},
      });
      const [run] = await sync.runs(PEER, 10);
      expect(run).toMatchObject({
        outcome: 'completed',
        bytesSent: 3_000_000_000,
        bytesReceived: PAST_INT32,
      });
      expect(typeof run?.bytesSent).toBe('number');
      expect(JSON.stringify(run)).toContain('3000000000');
      await store.close();
    });

    it('reads a page of open objects in byte order from the (peer, open, reference_id) index, without a sort', async () => {
      fx = await createStoreFixture(engine);
      const store = await fx.open();
      // Mixed case and non-ASCII ids: byte order differs from most locales' order.
      const refs = ['b', 'B', 'a', 'é', 'Z', 'z-1', 'z_1'];
      await store.commit(refs.map((ref, i) => commandItem({ cid: `c${i}`, referenceId: ref, write: 'v1' })));
      await store.close();
      // Many open objects of this peer and of others, closed ones too, written straight to the table.
      const no = engine === 'sqlite' ? '0' : 'false';
      const yes = engine === 'sqlite' ? '1' : 'true';
      const at = engine === 'sqlite' ? "'2026-01-01T00:00:00.000+00:00'" : "'2026-01-01 00:00:00'";
      const series =
        engine === 'sqlite'
          ? `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${OPEN_ROWS}) SELECT i FROM s`
          : `SELECT generate_series(1, ${OPEN_ROWS}) AS i`;
      await fx.exec(
        `INSERT INTO object_head (peer, reference_id, head_version, open, version_count, updated_at) ` +
          `SELECT CASE WHEN i % 4 = 0 THEN 'other-peer' ELSE '${PEER}' END, 'ref-' || i, 'v1', ` +
          `CASE WHEN i % 5 = 0 THEN ${no} ELSE ${yes} END, 1, ${at} FROM (${series}) t;` +
          (engine === 'sqlite' ? 'ANALYZE' : 'ANALYZE object_head'),
      );

      const explain = engine === 'sqlite' ? 'EXPLAIN QUERY PLAN ' : 'EXPLAIN (COSTS OFF) ';
      const plan = (
        await fx.query<Record<string, string>>(`${explain}${openObjectsPage(engine, 'ref-5', 500)}`)
      )
        .map((row) => (engine === 'sqlite' ? row['detail'] : row['QUERY PLAN']))
        .join('\n');
      expect(plan).toMatch(/object_head_peer_open_reference_id_idx/);
      expect(plan).not.toMatch(engine === 'sqlite' ? /TEMP B-TREE/ : /Sort/);

      // And the store's pages follow byte order (UTF-8 bytes: 'B' < 'Z' < 'a' < 'b' < 'z-1' < 'z_1' < 'é').
      const reopened = await fx.open();
      const page = await reopened.openObjects(PEER, 'ref-9999', 1000);
      expect(page.map((h) => h.referenceId)).toEqual(['z-1', 'z_1', 'é']);
      const first = await reopened.openObjects(PEER, null, 4);
      expect(first.map((h) => h.referenceId)).toEqual(['B', 'Z', 'a', 'b']);
    });
  });
}

describeScale('sqlite');
if (HAVE_PG) describeScale('postgresql');
