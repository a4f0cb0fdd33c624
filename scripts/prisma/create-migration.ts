/**
 * `npm run db:migrations -- <name>`: adds a migration for both providers.
 *
 * Syncs prisma/postgresql/schema.prisma from the SQLite source, then, per provider, asks Prisma's
 * wasm schema engine for the SQL that takes the existing migrations to the schema (the engine
 * replays the migrations into a shadow database: in-memory SQLite; for PostgreSQL a temporary
 * database on the server of `PARLEY_MIGRATE_PG_URL`, else `TEST_PG_URL`, else
 * postgresql://postgres@127.0.0.1:5432/postgres) and writes
 * `prisma/<provider>/migrations/<timestamp>_<name>/migration.sql`, as `prisma migrate dev
 * --create-only` would. Nothing is applied to any real database.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import {
  MIGRATION_LOCKFILE,
  migrationLockfileContent,
  migrationsDir,
  readMigrationList,
  schemaPath,
} from '../../src/store/migrations.js';
import { noSchemaFilter, withSchemaEngine } from '../../src/store/schema-engine.js';
import type { StoreEngine } from '../../src/store/types.js';
import { createPgMigrationFactory } from './pg-introspection-pool.js';
import { syncSchemas } from './schema-sync.js';

const DEFAULT_PG_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const ENGINES: readonly StoreEngine[] = ['sqlite', 'postgresql'];

function adapterFactory(engine: StoreEngine): SqlMigrationAwareDriverAdapterFactory {
  if (engine === 'sqlite') return new PrismaBetterSqlite3({ url: ':memory:' });
  const url = process.env['PARLEY_MIGRATE_PG_URL'] ?? process.env['TEST_PG_URL'] ?? DEFAULT_PG_URL;
  return createPgMigrationFactory(url);
}

/** `YYYYMMDDHHMMSS` in UTC, the prefix Prisma gives migration folders. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** The SQL that brings the migrations of `engine` up to its schema, or null when there is none. */
async function pendingSql(engine: StoreEngine): Promise<string | null> {
  const dir = migrationsDir(engine);
  const schema = { path: schemaPath(engine), content: await readFile(schemaPath(engine), 'utf8') };
  const list = await readMigrationList(dir);
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

async function main(): Promise<void> {
  const name = process.argv[2];
  if (!name || !/^[a-z0-9_]+$/.test(name)) {
    console.error('usage: npm run db:migrations -- <name>   (name: lowercase letters, digits, _)');
    process.exitCode = 2;
    return;
  }
  const sync = await syncSchemas({ write: true });
  if (sync.changed) console.error(`synced ${relative(process.cwd(), sync.path)}`);

  const folder = `${timestamp(new Date())}_${name}`;
  let written = 0;
  for (const engine of ENGINES) {
    console.error(`${engine}: diffing the schema against the existing migrations…`);
    const sql = await pendingSql(engine);
    if (sql === null) {
      console.error(`${engine}: schema matches the migrations, nothing to write`);
      continue;
    }
    const dir = migrationsDir(engine);
    await mkdir(join(dir, folder), { recursive: true });
    await writeFile(join(dir, folder, 'migration.sql'), sql);
    if (!existsSync(join(dir, MIGRATION_LOCKFILE))) {
      await writeFile(join(dir, MIGRATION_LOCKFILE), migrationLockfileContent(engine));
    }
    console.error(`${engine}: wrote ${relative(process.cwd(), join(dir, folder, 'migration.sql'))}`);
    written += 1;
  }
  if (written === 1) {
    console.error('warning: only one provider got a migration; are the schemas in sync?');
    process.exitCode = 1;
  }
}

await main();
