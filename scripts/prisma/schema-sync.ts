/**
 * Derives the PostgreSQL Prisma schema from the SQLite one (the source of truth).
 *
 * Prisma fixes the datasource provider per schema file; Parley's models are identical on both
 * engines, so the PostgreSQL schema is the SQLite schema with a generated header, the datasource
 * provider switched and the client generated into its own folder. The one other difference is a
 * field marked `// postgresql: BigInt` in the source: an `Int` there (32 bits on PostgreSQL, 64
 * on SQLite, whose INTEGER is always 64-bit) becomes a `BigInt` on PostgreSQL.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { schemaPath } from '../../src/store/migrations.js';

/** The header that marks the PostgreSQL schema as generated. */
export const GENERATED_HEADER =
  '// GENERATED from prisma/sqlite/schema.prisma by scripts/prisma/sync-schemas.ts: do not edit.\n' +
  '// Change prisma/sqlite/schema.prisma, then run `npm run db:sync-schemas`.\n';

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`));
  if (matches?.length !== 1) {
    throw new Error(
      `prisma/sqlite/schema.prisma: expected exactly one ${what}, found ${matches?.length ?? 0}`,
    );
  }
  return text.replace(pattern, replacement);
}

/** The end-of-line marker of a field that is `BigInt` on PostgreSQL and `Int` on SQLite. */
export const PG_BIGINT_MARKER = '// postgresql: BigInt';

/**
 * Turns the type of every field marked {@link PG_BIGINT_MARKER} from `Int` (or `Int?`) into
 * `BigInt`, keeping the column alignment where the padding allows.
 *
 * Why not `Int @db.BigInt`: Prisma refuses a native `BigInt` type on an `Int` field, and the
 * SQLite connector has no native types at all. The PostgreSQL client therefore types such a
 * field as `bigint` while the SQLite one types it as `number`; the store codes against the SQLite
 * client (src/store/client.ts), so such fields must not be read into or compared with numbers in
 * TypeScript (they are only ordered by and joined on, in SQL).
 */
function widenMarkedInts(schema: string): string {
  return schema.replace(
    /^(\s*\w+\s+)Int(\??)( *)(\S.*?)\s*\/\/ postgresql: BigInt\s*$/gm,
    (_line, name: string, optional: string, pad: string, rest: string) =>
      `${name}BigInt${optional}${' '.repeat(Math.max(1, pad.length - 3))}${rest} ${PG_BIGINT_MARKER}`,
  );
}

/** Renders `prisma/postgresql/schema.prisma` from the content of `prisma/sqlite/schema.prisma`. */
export function renderPostgresSchema(sqliteSchema: string): string {
  // Drop the source's leading comment block: it describes the source, not the copy.
  const body = sqliteSchema.replace(/^(?:\/\/[^\n]*\n|\s*\n)*/, '');
  let out = replaceOnce(
    body,
    /(datasource\s+db\s*\{[^}]*?provider\s*=\s*)"sqlite"/,
    '$1"postgresql"',
    'datasource provider "sqlite"',
  );
  out = replaceOnce(
    out,
    /(output\s*=\s*"[^"]*\/generated\/)sqlite"/,
    '$1postgresql"',
    'generator output ending in /generated/sqlite',
  );
  return `${GENERATED_HEADER}\n${widenMarkedInts(out)}`;
}

/** Result of comparing (or writing) the generated schema. */
export interface SyncResult {
  path: string;
  /** Whether the file on disk differed from the rendered schema (before writing, if writing). */
  changed: boolean;
}

/**
 * Renders the PostgreSQL schema and compares it with the file on disk; with `write`, replaces the
 * file when it differs.
 */
export async function syncSchemas(options: { write: boolean; prismaDir?: string }): Promise<SyncResult> {
  const source = await readFile(schemaPath('sqlite', options.prismaDir), 'utf8');
  const target = schemaPath('postgresql', options.prismaDir);
  const expected = renderPostgresSchema(source);
  const actual = await readFile(target, 'utf8').catch(() => null);
  const changed = actual !== expected;
  if (changed && options.write) await writeFile(target, expected);
  return { path: target, changed };
}
