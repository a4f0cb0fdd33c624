/**
 * The only place where Parley's hand-written SQL differs between SQLite and PostgreSQL.
 *
 * Values need no translation: SQL parameters carry Prisma `ArgType`s and the driver adapters
 * map them (booleans to 0/1 and dates to ISO text on SQLite, dates to `timestamp` text on
 * PostgreSQL), exactly as for Prisma's own queries. What differs is placeholder syntax, the
 * casts PostgreSQL needs where a parameter's type cannot be inferred (inside `VALUES` lists), and
 * the collation that gives byte order.
 */
import type { ArgScalarType } from '@prisma/driver-adapter-utils';
import type { StoreEngine } from './types.js';

/** A parameter type as Parley's SQL uses it. */
export type ParamType = Extract<ArgScalarType, 'string' | 'int' | 'boolean' | 'datetime'>;

const PG_CASTS: Record<ParamType, string> = {
  string: 'text',
  int: 'integer',
  boolean: 'boolean',
  datetime: 'timestamp(3)',
};

/** How to spell the engine-specific parts of a statement. */
export interface Dialect {
  readonly engine: StoreEngine;
  /**
   * The `n`-th (1-based) parameter placeholder. With `type`, the placeholder is typed explicitly
   * where the engine needs it (PostgreSQL, for parameters inside a `VALUES` list of a CTE).
   */
  param(n: number, type?: ParamType): string;
  /** `expr` compared and ordered by bytes (SQLite's default; `COLLATE "C"` on PostgreSQL). */
  bytewise(expr: string): string;
}

/** SQLite: `?` placeholders (bound in order), binary collation by default. */
export const sqliteDialect: Dialect = {
  engine: 'sqlite',
  param: () => '?',
  bytewise: (expr) => expr,
};

/** PostgreSQL: `$n` placeholders, explicit casts where needed, `"C"` collation for byte order. */
export const postgresqlDialect: Dialect = {
  engine: 'postgresql',
  param: (n, type) => (type === undefined ? `$${n}` : `$${n}::${PG_CASTS[type]}`),
  bytewise: (expr) => `${expr} COLLATE "C"`,
};

/** The dialect of an engine. */
export function dialectFor(engine: StoreEngine): Dialect {
  return engine === 'sqlite' ? sqliteDialect : postgresqlDialect;
}
