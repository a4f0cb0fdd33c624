/**
 * The SQL that takes a provider's migrations folder to its schema, from Prisma's wasm schema
 * engine (what `prisma migrate diff --from-migrations … --to-schema-datamodel …` prints). The
 * engine replays the migrations into a shadow database: in-memory SQLite, or for PostgreSQL a
 * temporary database on the server of `PARLEY_MIGRATE_PG_URL`, else `TEST_PG_URL`, else
 * postgresql://postgres@127.0.0.1:5432/postgres. Nothing is written to any real database.
 */
import { readFile } from 'node:fs/promises';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { migrationsDir, readMigrationList, schemaPath } from '../../src/store/migrations.js';
import { noSchemaFilter, withSchemaEngine } from '../../src/store/schema-engine.js';
import type { StoreEngine } from '../../src/store/types.js';
import { createPgMigrationFactory } from './pg-introspection-pool.js';

/** The server `db:migrations` uses for PostgreSQL shadow databases by default. */
export const DEFAULT_MIGRATE_PG_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

function adapterFactory(engine: StoreEngine): SqlMigrationAwareDriverAdapterFactory {
  if (engine === 'sqlite') return new PrismaBetterSqlite3({ url: ':memory:' });
  const url = process.env['PARLEY_MIGRATE_PG_URL'] ?? process.env['TEST_PG_URL'] ?? DEFAULT_MIGRATE_PG_URL;
  return createPgMigrationFactory(url);
}

/** The SQL that brings the migrations of `engine` up to its schema, or null when there is none. */
export async function pendingMigrationSql(engine: StoreEngine): Promise<string | null> {
  const schema = { path: schemaPath(engine), content: await readFile(schemaPath(engine), 'utf8') };
  const list = await readMigrationList(migrationsDir(engine));
  const from =
    list.migrationDirectories.length === 0
      ? { tag: 'empty' as const }
      : { tag: 'migrations' as const, ...list };
  const result = await withSchemaEngine(adapterFactory(engine), [schema], (se) =>
    se.diff({
      from,
      to: { tag: 'schemaDatamodel', files: [schema] },
      script: true,
      exitCode: true,
      filters: noSchemaFilter(),
    }),
  );
  // exitCode 2 = the diff is not empty (as with `prisma migrate diff --exit-code`).
  return result.exitCode === 2 && result.stdout ? result.stdout : null;
}
