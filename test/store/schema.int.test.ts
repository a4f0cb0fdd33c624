/**
 * The two Prisma schemas and the migrations stay in step: the PostgreSQL schema is exactly the
 * generated copy of the SQLite one, and each provider's migrations produce its schema.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { pendingMigrationSql } from '../../scripts/prisma/migration-diff.js';
import { renderPostgresSchema, syncSchemas } from '../../scripts/prisma/schema-sync.js';
import { schemaPath } from '../../src/store/migrations.js';
import { HAVE_PG } from '../helpers/store.js';

/** The schema without comments, generator and datasource blocks: just the models. */
function models(schema: string): string {
  return schema
    .replace(/^\s*\/\/(?!\/).*$/gm, '')
    .replace(/(generator|datasource)\s+\w+\s*\{[^}]*\}/g, '')
    .replace(/\n\s*\n+/g, '\n')
    .trim();
}

describe('Prisma schemas', () => {
  it('has prisma/postgresql/schema.prisma in sync with prisma/sqlite/schema.prisma (npm run db:sync-schemas)', async () => {
    expect((await syncSchemas({ write: false })).changed).toBe(false);
  });

  it('gives both providers identical models', async () => {
    const sqlite = await readFile(schemaPath('sqlite'), 'utf8');
    const postgresql = await readFile(schemaPath('postgresql'), 'utf8');
    expect(models(postgresql)).toBe(models(sqlite));
    expect(postgresql).toMatch(/provider\s*=\s*"postgresql"/);
    expect(postgresql).toContain('generated/postgresql"');
  });

  it('refuses to render a source without exactly one sqlite datasource', () => {
    expect(() => renderPostgresSchema('model A { id Int @id }')).toThrow(/datasource provider/);
  });

  it('has SQLite migrations that produce the SQLite schema (npm run db:migrations)', async () => {
    expect(await pendingMigrationSql('sqlite')).toBeNull();
  });

  it.skipIf(!HAVE_PG)(
    'has PostgreSQL migrations that produce the PostgreSQL schema (needs TEST_PG_URL)',
    async () => {
      expect(await pendingMigrationSql('postgresql')).toBeNull();
    },
  );
});
