/**
 * Store fixtures for tests: a fresh, real database per test on either engine.
 *
 * - SQLite: a file in a new temp folder.
 * - PostgreSQL: a new database `parley_test_<run>_<random>` on the server of `TEST_PG_URL`
 *   (e.g. `postgresql://postgres@127.0.0.1:5432/postgres`), dropped afterwards. Without
 *   `TEST_PG_URL` the PostgreSQL suites are skipped (`test/store/postgresql.int.test.ts` says so
 *   on the console).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { type OpenStoreOptions, openStore } from '../../src/store/index.js';
import type { CommitItem, ParleyStore, StoreEngine } from '../../src/store/types.js';
import { RUN_ENV } from '../global-setup.js';

/** Admin URL of the test PostgreSQL server, if any. */
export const TEST_PG_URL: string | undefined = process.env['TEST_PG_URL'] || undefined;

/** Whether the PostgreSQL suites run. */
export const HAVE_PG = TEST_PG_URL !== undefined;

/** A fresh database, the stores opened on it, and raw access for tests that corrupt data. */
export interface StoreFixture {
  readonly engine: StoreEngine;
  /** The store URL of the database. */
  readonly url: string;
  /** Opens a store on the database; `dispose()` closes it. */
  open(options?: Omit<OpenStoreOptions, 'url'>): Promise<ParleyStore>;
  /** Runs SQL on the database behind the store's back (statements separated by `;`). */
  exec(sql: string): Promise<void>;
  /** Runs a query behind the store's back. */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Closes the stores and replaces the database with an empty one (lost state). */
  wipe(): Promise<void>;
  /**
   * Closes the stores and copies the database aside; the returned function (call it while no
   * store is open on the database) puts the copy back in its place, as often as wanted. SQLite
   * copies the files; PostgreSQL makes a database from this one as a template and back. The
   * copies go with `dispose()`.
   */
  snapshot(): Promise<() => Promise<void>>;
  /** Closes the stores and deletes the database. Idempotent. */
  dispose(): Promise<void>;
}

/** Creates a fresh database for `engine`. */
export function createStoreFixture(engine: StoreEngine): Promise<StoreFixture> {
  return engine === 'sqlite' ? createSqliteFixture() : createPgFixture();
}

function tracker(): {
  open: (url: string, options?: Omit<OpenStoreOptions, 'url'>) => Promise<ParleyStore>;
  closeAll: () => Promise<void>;
} {
  const stores: ParleyStore[] = [];
  return {
    open: async (url, options) => {
      const store = await openStore({ ...options, url });
      stores.push(store);
      return store;
    },
    closeAll: async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    },
  };
}

async function createSqliteFixture(): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-store-'));
  const path = join(dir, 'store.db');
  const stores = tracker();
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(path);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  let disposed = false;
  return {
    engine: 'sqlite',
    url: `file:${path}`,
    open: (options) => stores.open(`file:${path}`, options),
    exec: async (sql) => withDb((db) => void db.exec(sql)),
    query: async <T>(sql: string) => withDb((db) => db.prepare(sql).all() as T[]),
    wipe: async () => {
      await stores.closeAll();
      for (const suffix of ['', '-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
    },
    snapshot: async () => {
      await stores.closeAll();
      const copy = `${path}.snapshot.${randomBytes(4).toString('hex')}`;
      await copySqliteFiles(path, copy);
      return () => copySqliteFiles(copy, path);
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await stores.closeAll();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Copies a SQLite database with its WAL files (a missing one is missing in the copy too). */
async function copySqliteFiles(from: string, to: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm']) {
    await rm(`${to}${suffix}`, { force: true });
    await copyFile(`${from}${suffix}`, `${to}${suffix}`).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function createPgFixture(): Promise<StoreFixture> {
  if (!TEST_PG_URL) throw new Error('TEST_PG_URL is not set');
  // The run's name (test/global-setup.ts) lets the run drop what a failed test left behind.
  const run = process.env[RUN_ENV] ?? 'norun';
  const name = `parley_test_${run}_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  const stores = tracker();
  const withClient = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const copies: string[] = [];
  // CREATE DATABASE … TEMPLATE needs the template to have no sessions: a store just closed may
  // leave its backends for a moment (PostgreSQL would wait up to 5 s, then fail).
  const endSessions = (db: string) =>
    admin(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}' AND pid <> pg_backend_pid()`,
    );
  let disposed = false;
  return {
    engine: 'postgresql',
    url: dbUrl,
    open: (options) => stores.open(dbUrl, options),
    exec: (sql) => withClient(async (c) => void (await c.query(sql))),
    query: <T>(sql: string) => withClient(async (c) => (await c.query(sql)).rows as T[]),
    wipe: async () => {
      await stores.closeAll();
      await admin(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin(`CREATE DATABASE ${name}`);
    },
    snapshot: async () => {
      await stores.closeAll();
      const copy = `${name}_snap_${copies.length}`;
      copies.push(copy);
      await endSessions(name);
      await admin(`CREATE DATABASE ${copy} TEMPLATE ${name}`);
      return async () => {
        await admin(`DROP DATABASE ${name} WITH (FORCE)`);
        await admin(`CREATE DATABASE ${name} TEMPLATE ${copy}`);
      };
    },
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await stores.closeAll();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      for (const copy of copies) await admin(`DROP DATABASE IF EXISTS ${copy} WITH (FORCE)`);
    },
  };
}

/** The peer address used by store tests (any non-empty string is a valid channel key). */
export const PEER = 'pdm1qtestpeer0000000000000000000';

/** Describes one command for {@link commandItem}. */
export interface ItemSpec {
  cid: string;
  referenceId: string;
  /** The version read; null (default) for a create. */
  read?: string | null;
  write: string;
  peer?: string;
  status?: 'success' | 'failure';
  /** Whether the object stays open after this version. @default true */
  open?: boolean;
  direction?: 'outbound' | 'inbound';
  settlesOutbox?: boolean;
}

/**
 * A commit item as the channel would build it: a successful command comes with its version, a
 * failed one with a LIP-1 error code and no version.
 */
export function commandItem(spec: ItemSpec): CommitItem {
  const peer = spec.peer ?? PEER;
  const status = spec.status ?? 'success';
  const read = spec.read ?? null;
  const item: CommitItem = {
    command: {
      peer,
      cid: spec.cid,
      direction: spec.direction ?? 'inbound',
      referenceId: spec.referenceId,
      readVersion: read,
      writeVersion: spec.write,
      requestJws: `req.${spec.cid}.sig`,
      responseJws: `resp.${spec.cid}.sig`,
      status,
      errorCode: status === 'failure' ? 'used_dependencies' : null,
    },
  };
  if (status === 'success') {
    item.version = {
      peer,
      referenceId: spec.referenceId,
      version: spec.write,
      previousVersion: read,
      payment: JSON.stringify({ reference_id: spec.referenceId, version: spec.write }),
      open: spec.open ?? true,
    };
  }
  if (spec.settlesOutbox) item.settlesOutbox = true;
  return item;
}
