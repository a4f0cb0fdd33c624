/**
 * The two Prisma schemas and the migrations stay in step: the PostgreSQL schema is exactly the
 * generated copy of the SQLite one (with the `// postgresql: BigInt` fields widened), and each
 * provider's migrations produce its schema.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { pendingMigrationSql } from '../../scripts/prisma/migration-diff.js';
import { PG_BIGINT_MARKER, renderPostgresSchema, syncSchemas } from '../../scripts/prisma/schema-sync.js';
import { migrationsDir, readMigrationList, schemaPath } from '../../src/store/migrations.js';
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

  it('gives both providers identical models, but for the Int fields marked BigInt on PostgreSQL', async () => {
    const sqlite = await readFile(schemaPath('sqlite'), 'utf8');
    const postgresql = await readFile(schemaPath('postgresql'), 'utf8');
    const marked = (schema: string) => schema.split('\n').filter((l) => l.endsWith(PG_BIGINT_MARKER));
    expect(marked(sqlite).map((l) => l.trim().split(/\s+/).slice(0, 2))).toEqual([
      ['id', 'Int'],
      ['logId', 'Int'],
      ['id', 'Int'],
      ['id', 'Int'],
      ['bytesSent', 'Int'],
      ['bytesReceived', 'Int'],
      ['expiresAt', 'Int'],
      ['expiresAt', 'Int'],
      ['id', 'Int'],
    ]);
    expect(marked(postgresql).map((l) => l.trim().split(/\s+/).slice(0, 2))).toEqual([
      ['id', 'BigInt'],
      ['logId', 'BigInt'],
      ['id', 'BigInt'],
      ['id', 'BigInt'],
      ['bytesSent', 'BigInt'],
      ['bytesReceived', 'BigInt'],
      ['expiresAt', 'BigInt'],
      ['expiresAt', 'BigInt'],
      ['id', 'BigInt'],
    ]);
    const asInt = (schema: string) =>
      schema
        .split('\n')
        .map((l) => (l.endsWith(PG_BIGINT_MARKER) ? l.replace(/^(\s*\w+\s+)BigInt\s*/, '$1Int ') : l))
        .map((l) => l.replace(/^(\s*\w+\s+)Int\s+/, '$1Int '))
        .join('\n');
    expect(asInt(models(postgresql))).toBe(asInt(models(sqlite)));
    expect(postgresql).toMatch(/provider\s*=\s*"postgresql"/);
    expect(postgresql).toContain('generated/postgresql"');
  });

  it('refuses to render a source without exactly one sqlite datasource', () => {
    expect(() => renderPostgresSchema('model A { id Int @id }')).toThrow(/datasource provider/);
  });

  it('renders a field marked `// postgresql: BigInt` as BigInt (optional too), and no other', () => {
    const source = [
      'generator client {',
      '  output = "../../src/store/generated/sqlite"',
      '}',
      'datasource db {',
      '  provider = "sqlite"',
      '}',
      'model A {',
      `  id    Int    @id ${PG_BIGINT_MARKER}`,
      `  ref   Int?   @unique ${PG_BIGINT_MARKER}`,
      '  count Int    @default(0)',
      '}',
    ].join('\n');
    const out = renderPostgresSchema(source);
    expect(out).toContain(`  id    BigInt @id ${PG_BIGINT_MARKER}`);
    expect(out).toContain(`  ref   BigInt? @unique ${PG_BIGINT_MARKER}`);
    expect(out).toContain('  count Int    @default(0)');
  });

  it('has no ";" in the comments of a migration (adapter-pg splits a script at every ";")', async () => {
    for (const engine of ['sqlite', 'postgresql'] as const) {
      const list = await readMigrationList(migrationsDir(engine));
      for (const dir of list.migrationDirectories) {
        const content = dir.migrationFile.content;
        const sql = content.tag === 'ok' ? content.value : '';
        const bad = sql.split('\n').filter((l) => /^\s*--.*;/.test(l));
        expect(bad, `${engine}/${dir.path}`).toEqual([]);
      }
    }
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
