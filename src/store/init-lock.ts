/**
 * Serialises store initialisation (migrations + identity) across processes and within one, so
 * that two nodes opening the same database at once never apply a migration twice.
 *
 * - SQLite: an exclusive lock on a companion file `<database>.init-lock` (a SQLite file used only
 *   for its lock). The OS drops the lock when its holder dies, so a crash never leaves the
 *   database locked. Its journal is kept in memory: the transaction that holds the lock writes
 *   nothing (not even the empty file's first page), so the lock is had on a full disk too (the
 *   integrity check of a node whose volume filled up must run). The lock is polled with a zero busy timeout: a blocking busy wait would
 *   freeze the event loop that must release the lock when both openers share a process.
 * - PostgreSQL: a session-level advisory lock, held on one pool connection.
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { ParleyError } from '../errors.js';

/** How long an opener waits for another one to finish initialising. @default 60000 */
export const DEFAULT_INIT_LOCK_TIMEOUT_MS = 60_000;

const POLL_INTERVAL_MS = 20;

/** Advisory-lock key: "parley" in ASCII. */
const PG_INIT_LOCK_KEY = '112568748910969';

/** The companion lock file of a SQLite database file. */
export function sqliteLockPath(databasePath: string): string {
  return `${databasePath}.init-lock`;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Runs `fn` while holding the initialisation lock of a SQLite database file.
 *
 * @throws ParleyError `STORE_UNAVAILABLE` when the lock cannot be had within `timeoutMs`.
 */
export async function withSqliteInitLock<T>(
  databasePath: string,
  fn: () => Promise<T>,
  timeoutMs: number = DEFAULT_INIT_LOCK_TIMEOUT_MS,
): Promise<T> {
  const lockPath = sqliteLockPath(databasePath);
  let lock: Database.Database;
  try {
    lock = new Database(lockPath, { timeout: 0 });
  } catch (err) {
    throw new ParleyError('STORE_UNAVAILABLE', `cannot open ${lockPath}`, { cause: err });
  }
  try {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        // Set on every try: the pragma itself waits for another holder's lock.
        lock.exec('PRAGMA journal_mode = MEMORY; BEGIN EXCLUSIVE');
        break;
      } catch (err) {
        if (!isBusy(err))
          throw new ParleyError('STORE_UNAVAILABLE', `cannot lock ${lockPath}`, { cause: err });
        if (performance.now() > deadline) {
          throw new ParleyError('STORE_UNAVAILABLE', `timed out waiting for ${lockPath}`, { cause: err });
        }
        await pause(POLL_INTERVAL_MS);
      }
    }
    try {
      return await fn();
    } finally {
      lock.exec('ROLLBACK');
    }
  } finally {
    lock.close();
  }
}

/**
 * Runs `fn` while holding Parley's initialisation advisory lock on a PostgreSQL database.
 *
 * @throws ParleyError `STORE_UNAVAILABLE` when the database cannot be reached.
 */
export async function withPgInitLock<T>(pool: pg.Pool, fn: () => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new ParleyError('STORE_UNAVAILABLE', 'cannot reach PostgreSQL to initialise the store', {
      cause: err,
    });
  }
  // A checked-out client reports a dropped connection as an 'error' event, which would crash the
  // process without a listener; the failure also surfaces on the pending query.
  const ignore = () => {};
  client.on('error', ignore);
  const release = (err?: unknown) => {
    client.removeListener('error', ignore);
    client.release(err instanceof Error ? err : undefined);
  };
  try {
    await client.query('SELECT pg_advisory_lock($1::bigint)', [PG_INIT_LOCK_KEY]);
  } catch (err) {
    release(err);
    throw new ParleyError('STORE_UNAVAILABLE', 'cannot take the store initialisation lock', { cause: err });
  }
  let broken: unknown;
  try {
    return await fn();
  } finally {
    try {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [PG_INIT_LOCK_KEY]);
    } catch (err) {
      broken = err; // the session is gone, and its lock with it
    }
    release(broken);
  }
}
