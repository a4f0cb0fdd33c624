import { describe, expect, it } from 'vitest';
import { splitSqlScript } from '../../src/store/sql-script.js';

describe('splitSqlScript (PostgreSQL migration scripts)', () => {
  it('splits at the semicolons that end statements, trimmed, dropping comment-only pieces', () => {
    expect(splitSqlScript('CREATE TABLE a (x INT);\n\n  ALTER TABLE a ADD y INT ;\n-- done;\n')).toEqual([
      'CREATE TABLE a (x INT)',
      'ALTER TABLE a ADD y INT',
    ]);
    expect(splitSqlScript('')).toEqual([]);
    expect(splitSqlScript('SELECT 1')).toEqual(['SELECT 1']);
  });

  it('keeps a semicolon inside a comment, a string, a quoted name or a dollar-quoted body', () => {
    const script = [
      '-- widen the ids; both tables',
      'ALTER TABLE "a;b" ALTER COLUMN "id" SET DATA TYPE BIGINT;',
      "/* a block; /* nested; */ still comment; */ INSERT INTO t VALUES ('x;y', 'it''s; fine');",
      "INSERT INTO t VALUES (E'back\\'slash; quote');",
      'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;',
      'DO $body$ BEGIN PERFORM 1; END $body$;',
      'SELECT $1; SELECT a$b FROM t',
    ].join('\n');
    expect(splitSqlScript(script)).toEqual([
      '-- widen the ids; both tables\nALTER TABLE "a;b" ALTER COLUMN "id" SET DATA TYPE BIGINT',
      "/* a block; /* nested; */ still comment; */ INSERT INTO t VALUES ('x;y', 'it''s; fine')",
      "INSERT INTO t VALUES (E'back\\'slash; quote')",
      'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql',
      'DO $body$ BEGIN PERFORM 1; END $body$',
      'SELECT $1',
      'SELECT a$b FROM t',
    ]);
  });

  it('does not treat a backslash as an escape in a plain string', () => {
    expect(splitSqlScript("SELECT 'a\\'; SELECT 2")).toEqual(["SELECT 'a\\'", 'SELECT 2']);
  });

  it('splits every migration of the project into whole statements', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { migrationsDir } = await import('../../src/store/migrations.js');
    const dir = migrationsDir('postgresql');
    for (const name of (await readdir(dir)).filter((n) => /^\d{14}_/.test(n))) {
      const statements = splitSqlScript(await readFile(join(dir, name, 'migration.sql'), 'utf8'));
      expect(statements.length, name).toBeGreaterThan(0);
      for (const statement of statements) {
        expect(statement, name).toMatch(/^(--[^\n]*\n\s*)*(CREATE|ALTER|DROP|INSERT|UPDATE)\b/);
      }
    }
  });
});
