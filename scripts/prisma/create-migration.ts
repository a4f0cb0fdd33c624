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
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { MIGRATION_LOCKFILE, migrationLockfileContent, migrationsDir } from '../../src/store/migrations.js';
import type { StoreEngine } from '../../src/store/types.js';
import { pendingMigrationSql } from './migration-diff.js';
import { syncSchemas } from './schema-sync.js';

const ENGINES: readonly StoreEngine[] = ['sqlite', 'postgresql'];

/** `YYYYMMDDHHMMSS` in UTC, the prefix Prisma gives migration folders. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
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
    const sql = await pendingMigrationSql(engine);
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
  // One provider alone is legitimate when the change is engine-specific (a `// postgresql:
  // BigInt` marker in prisma/sqlite/schema.prisma); the schemas were synced above, and
  // test/store/schema.int.test.ts checks that each provider's migrations produce its schema.
  if (written === 1) console.error('note: only one provider got a migration (an engine-specific change)');
}

await main();
