/**
 * Runs the statements of one write batch in one transaction on the store's writer connection,
 * through the Prisma driver adapter (see `group-commit.ts` for why not through PrismaClient).
 */
import { isDriverAdapterError, type SqlDriverAdapter, type SqlQuery } from '@prisma/driver-adapter-utils';
import { ParleyError } from '../errors.js';
import type { ConflictCode, WriteStatement } from './commit-sql.js';

/**
 * A batch failed because of what it contained (a constraint or a conditional write said no),
 * not because the database failed. Internal: callers get a `ParleyError` with `code`.
 */
export class StoreConflict extends Error {
  override readonly name = 'StoreConflict';
  constructor(
    readonly code: ConflictCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const COMMIT: SqlQuery = { sql: 'COMMIT', args: [], argTypes: [] };
const ROLLBACK: SqlQuery = { sql: 'ROLLBACK', args: [], argTypes: [] };

/** SQLite's primary result code for constraint violations. */
const SQLITE_CONSTRAINT = 19;

/** Whether a driver error is a constraint violation (the data's fault, not the database's). */
export function isConstraintViolation(err: unknown): boolean {
  if (!isDriverAdapterError(err)) return false;
  const cause = err.cause;
  switch (cause.kind) {
    case 'UniqueConstraintViolation':
    case 'ForeignKeyConstraintViolation':
    case 'NullConstraintViolation':
      return true;
    case 'postgres':
      return cause.code.startsWith('23'); // class 23: integrity constraint violation
    case 'sqlite':
      return (cause.extendedCode & 0xff) === SQLITE_CONSTRAINT;
    default:
      return false;
  }
}

/**
 * Writes `statements` atomically: all of them are durable when this resolves, none of them when
 * it rejects.
 *
 * @throws StoreConflict when a statement violates a constraint or misses its expected row count.
 * @throws ParleyError `STORE_UNAVAILABLE` when the database fails.
 */
export async function writeBatch(
  adapter: SqlDriverAdapter,
  statements: readonly WriteStatement[],
): Promise<void> {
  let tx: Awaited<ReturnType<SqlDriverAdapter['startTransaction']>>;
  try {
    tx = await adapter.startTransaction();
  } catch (err) {
    throw new ParleyError('STORE_UNAVAILABLE', 'cannot start a write transaction', { cause: err });
  }
  try {
    for (const st of statements) {
      let rows: number;
      try {
        rows = await tx.executeRaw(st);
      } catch (err) {
        if (isConstraintViolation(err))
          throw new StoreConflict(st.onConflict, 'constraint violated', { cause: err });
        throw err;
      }
      if (st.expectRows !== undefined && rows !== st.expectRows) {
        throw new StoreConflict(st.onConflict, `conditional write touched ${rows} of ${st.expectRows} rows`);
      }
    }
    await tx.executeRaw(COMMIT);
  } catch (err) {
    try {
      await tx.executeRaw(ROLLBACK);
    } catch {
      // The transaction is already gone (failed COMMIT, broken connection): nothing to undo.
    } finally {
      await tx.rollback(); // releases the connection / adapter lock
    }
    if (err instanceof StoreConflict) throw err;
    throw new ParleyError('STORE_UNAVAILABLE', 'write transaction failed', { cause: err });
  }
  await tx.commit(); // releases the connection / adapter lock; COMMIT already ran
}
