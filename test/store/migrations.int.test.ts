/**
 * Data migrations keep what a store already holds: a store written before a migration opens
 * after it with the same commands, versions and heads, and stays consistent.
 */
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthRepository } from '../../src/store/health-repository.js';
import {
  applyMigrations,
  MIGRATION_LOCKFILE,
  migrationsDir,
  schemaPath,
} from '../../src/store/migrations.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

/** Applies the provider's migrations up to and including `last` (a folder name suffix). */
async function migrateUpTo(fx: StoreFixture, last: string): Promise<void> {
  const all = (await readdir(migrationsDir(fx.engine))).filter((n) => n !== MIGRATION_LOCKFILE).sort();
  const upTo = all.slice(0, all.findIndex((n) => n.endsWith(`_${last}`)) + 1);
  expect(upTo.length).toBeGreaterThan(0);
  const dir = await mkdtemp(join(tmpdir(), 'parley-migrations-'));
  try {
    for (const name of [...upTo, MIGRATION_LOCKFILE]) {
      await cp(join(migrationsDir(fx.engine), name), join(dir, name), { recursive: true });
    }
    const factory =
      fx.engine === 'sqlite'
        ? new PrismaBetterSqlite3({ url: fx.url.replace(/^file:/, '') })
        : new PrismaPg({ connectionString: fx.url });
    await applyMigrations(factory, dir, schemaPath(fx.engine));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function describeUpgrade(engine: StoreEngine): void {
  describe(`store upgrades (${engine})`, () => {
    let fx: StoreFixture | undefined;

    afterEach(async () => {
      await fx?.dispose();
    });

    it('gives versions written before version_log_id the id of their command', async () => {
      fx = await createStoreFixture(engine);
      await migrateUpTo(fx, 'health_and_resync');
      const at = engine === 'sqlite' ? "'2026-01-01T00:00:00.000+00:00'" : "'2026-01-01 00:00:00'";
      const yes = engine === 'sqlite' ? '1' : 'true';
      const log = (cid: string, read: string, write: string, status: string, code: string) =>
        `INSERT INTO command_log (peer, cid, direction, reference_id, read_version, write_version, request_jws, ` +
        `response_jws, status, error_code, created_at) VALUES ('${PEER}', '${cid}', 'inbound', 'r1', ${read}, ` +
        `'${write}', 'q', 's', '${status}', ${code}, ${at})`;
      await fx.exec(
        [
          log('c1', 'NULL', 'v1', 'success', 'NULL'),
          log('c2', "'v1'", 'v2x', 'failure', "'used_dependencies'"),
          log('c3', "'v1'", 'v2', 'success', 'NULL'),
          `INSERT INTO object_version (peer, reference_id, version, previous_version, payment, open, cid) VALUES ` +
            `('${PEER}', 'r1', 'v1', NULL, '{}', ${yes}, 'c1'), ('${PEER}', 'r1', 'v2', 'v1', '{"v":2}', ${yes}, 'c3')`,
          `INSERT INTO object_head (peer, reference_id, head_version, open, version_count, updated_at) VALUES ` +
            `('${PEER}', 'r1', 'v2', ${yes}, 2, ${at})`,
        ].join(';\n'),
      );

      const store = await fx.open();
      expect(await store.checkIntegrity()).toEqual([]);
      expect((await store.versions(PEER, 'r1')).map((v) => [v.version, v.payment])).toEqual([
        ['v1', '{}'],
        ['v2', '{"v":2}'],
      ]);
      expect((await store.history(PEER, 'r1')).map((c) => c.cid)).toEqual(['c1', 'c2', 'c3']);
      await store.commit([commandItem({ cid: 'c4', referenceId: 'r1', read: 'v2', write: 'v3' })]);
      expect(await store.head(PEER, 'r1')).toMatchObject({ headVersion: 'v3', versionCount: 3 });
      expect(await store.checkIntegrity()).toEqual([]);
    });

    it('reports a migration that fails as STORE_MIGRATION_FAILED with the database error, and again at the next open', async () => {
      fx = await createStoreFixture(engine);
      const dir = await mkdtemp(join(tmpdir(), 'parley-migrations-'));
      try {
        await cp(migrationsDir(engine), dir, { recursive: true });
        await mkdir(join(dir, '99991231000000_broken'));
        await writeFile(
          join(dir, '99991231000000_broken', 'migration.sql'),
          'ALTER TABLE "no_such_table" ADD COLUMN "x" INTEGER;\n',
        );
        const factory = () =>
          engine === 'sqlite'
            ? new PrismaBetterSqlite3({ url: fx!.url.replace(/^file:/, '') })
            : new PrismaPg({ connectionString: fx!.url });
        const failure = await applyMigrations(factory(), dir, schemaPath(engine)).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(failure).toMatchObject({ code: 'STORE_MIGRATION_FAILED' });
        expect(String((failure as Error).cause)).toMatch(/no_such_table/);
        // The migrations before it are applied, and the failed one is recorded as such.
        const rows = await fx.query<{ migration_name: string; finished_at: unknown }>(
          'SELECT migration_name, finished_at FROM _prisma_migrations ORDER BY migration_name',
        );
        expect(rows.at(-1)).toMatchObject({ migration_name: '99991231000000_broken', finished_at: null });
        expect(rows.slice(0, -1).every((r) => r.finished_at !== null)).toBe(true);
        await expect(applyMigrations(factory(), dir, schemaPath(engine))).rejects.toMatchObject({
          code: 'STORE_MIGRATION_FAILED',
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}

describeUpgrade('sqlite');
if (HAVE_PG) describeUpgrade('postgresql');

if (HAVE_PG) {
  describe('store upgrades (postgresql only)', () => {
    let fx: StoreFixture | undefined;

    afterEach(async () => {
      await fx?.dispose();
    });

    it('widens the signed log ids to BIGINT, keeps the rows and goes on numbering after the last id', async () => {
      fx = await createStoreFixture('postgresql');
      await migrateUpTo(fx, 'version_log_id');
      await fx.exec(
        `INSERT INTO command_log (peer, cid, direction, reference_id, read_version, write_version, request_jws, ` +
          `response_jws, status, error_code, created_at) VALUES ('${PEER}', 'c1', 'inbound', 'r1', NULL, 'v1', ` +
          `'q', 's', 'success', NULL, '2026-01-01 00:00:00');` +
          `INSERT INTO object_version (peer, reference_id, version, previous_version, payment, open, log_id) ` +
          `SELECT peer, reference_id, 'v1', NULL, '{}', true, id FROM command_log;` +
          `INSERT INTO object_head (peer, reference_id, head_version, open, version_count, updated_at) ` +
          `VALUES ('${PEER}', 'r1', 'v1', true, 1, '2026-01-01 00:00:00')`,
      );

      const store = await fx.open();
      const types = await fx.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE ` +
          `(table_name = 'command_log' AND column_name = 'id') OR (table_name = 'object_version' AND column_name = 'log_id') ` +
          'ORDER BY column_name',
      );
      expect(types).toEqual([
        { column_name: 'id', data_type: 'bigint' },
        { column_name: 'log_id', data_type: 'bigint' },
      ]);
      const [sequence] = await fx.query<{ data_type: string; max_value: string }>(
        `SELECT data_type, max_value::text FROM pg_sequences WHERE sequencename = 'command_log_id_seq'`,
      );
      expect(sequence).toEqual({ data_type: 'bigint', max_value: '9223372036854775807' });

      await store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })]);
      const ids = await fx.query<{ cid: string; id: string }>(
        'SELECT cid, id::text FROM command_log ORDER BY id',
      );
      expect(ids).toEqual([
        { cid: 'c1', id: '1' },
        { cid: 'c2', id: '2' },
      ]);
      expect((await store.versions(PEER, 'r1')).map((v) => v.version)).toEqual(['v1', 'v2']);
      expect(await store.checkIntegrity()).toEqual([]);
    });
    it('widens the health history and resync run ids to BIGINT, keeps the rows, and the repositories read numbers', async () => {
      fx = await createStoreFixture('postgresql');
      await migrateUpTo(fx, 'resync_bytes_bigint');
      await fx.exec(
        `INSERT INTO health_event (peer, kind, from_state, to_state, detail, created_at) VALUES ` +
          `('${PEER}', 'transition', 'up', 'suspect', '{}', '2026-01-01 00:00:00'), ` +
          `('${PEER}', 'epoch_seen', NULL, NULL, '{"epoch":"e1"}', '2026-01-01 00:00:01');` +
          `INSERT INTO resync_run (peer, reason, started_at) VALUES ('${PEER}', 'connect', '2026-01-01 00:00:00')`,
      );

      const store = await fx.open();
      const types = await fx.query<{ table_name: string; data_type: string }>(
        `SELECT table_name, data_type FROM information_schema.columns WHERE column_name = 'id' ` +
          `AND table_name IN ('health_event', 'resync_run') ORDER BY table_name`,
      );
      expect(types).toEqual([
        { table_name: 'health_event', data_type: 'bigint' },
        { table_name: 'resync_run', data_type: 'bigint' },
      ]);
      const sequences = await fx.query<{ sequencename: string; data_type: string; max_value: string }>(
        `SELECT sequencename, data_type, max_value::text FROM pg_sequences ` +
          `WHERE sequencename IN ('health_event_id_seq', 'resync_run_id_seq') ORDER BY sequencename`,
      );
      expect(sequences).toEqual([
        { sequencename: 'health_event_id_seq', data_type: 'bigint', max_value: '9223372036854775807' },
        { sequencename: 'resync_run_id_seq', data_type: 'bigint', max_value: '9223372036854775807' },
      ]);

      const health = createHealthRepository(store);
      await health.append([
        {
          peer: PEER,
          kind: 'transition',
          fromState: 'suspect',
          toState: 'up',
          detail: {},
          atMs: 1_767_225_602_000,
        },
      ]);
      const history = await health.history({ peer: PEER });
      expect(history.map((r) => [r.id, r.kind, r.toState])).toEqual([
        [3, 'transition', 'up'],
        [2, 'epoch_seen', null],
        [1, 'transition', 'suspect'],
      ]);
      expect((await health.history({ peer: PEER, beforeId: 2 })).map((r) => r.id)).toEqual([1]);
      expect(await health.epochs(PEER)).toEqual(['e1']);

      const sync = createSyncRepository(store);
      const run = await sync.startRun({
        peer: PEER,
        reason: 'connect',
        startedAtMs: 1_767_225_603_000,
        detail: {},
      });
      expect(run).toBe(2);
      await sync.finishRun(run, {
        finishedAtMs: 1_767_225_604_000,
        outcome: 'in_sync',
        objectsSent: 0,
        objectsReceived: 0,
        bytesSent: 10,
        bytesReceived: 20,
        rounds: 1,
        detail: {},
      });
      expect((await sync.runs(PEER, 10)).map((r) => [r.id, r.outcome])).toEqual([
        [2, 'in_sync'],
        [1, null],
      ]);
    });
    it('applies a migration with semicolons in its comments and strings, each statement whole', async () => {
      fx = await createStoreFixture('postgresql');
      const dir = await mkdtemp(join(tmpdir(), 'parley-migrations-'));
      try {
        await cp(migrationsDir('postgresql'), dir, { recursive: true });
        await mkdir(join(dir, '99991231000000_semicolons'));
        await writeFile(
          join(dir, '99991231000000_semicolons', 'migration.sql'),
          [
            '-- A note; with a semicolon, as a hand-edited migration may have.',
            `CREATE TABLE "semi" ("v" TEXT NOT NULL DEFAULT 'a;b');`,
            '/* block; comment */ INSERT INTO "semi" DEFAULT VALUES;',
          ].join('\n'),
        );
        const applied = await applyMigrations(
          new PrismaPg({ connectionString: fx.url }),
          dir,
          schemaPath('postgresql'),
        );
        expect(applied.at(-1)).toBe('99991231000000_semicolons');
        expect(await fx.query('SELECT v FROM semi')).toEqual([{ v: 'a;b' }]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
