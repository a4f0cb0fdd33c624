/**
 * PostgreSQL through node-postgres: one pool shared by the typed client and the group-commit
 * writer, every session with `synchronous_commit = on` (a commit is acknowledged only once its
 * WAL is flushed), whatever the server default.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlDriverAdapter, SqlQuery } from '@prisma/driver-adapter-utils';
import pg from 'pg';
import { ParleyError } from '../errors.js';
import { createStoreClient, type StoreClient } from './client.js';
import { postgresqlDialect } from './dialect.js';
import { withPgInitLock } from './init-lock.js';
import {
  type AppliedMigration,
  applyMigrations,
  migrationsDir,
  needsMigration,
  schemaPath,
} from './migrations.js';
import { pgHotPath } from './pg-direct.js';
import type { StoreBackend, StoreConnections } from './store-backend.js';

/** PostgreSQL knobs. */
export interface PostgresqlBackendOptions {
  /** Most connections the store's pool opens. */
  maxConnections: number;
}

/**
 * Names for the writer's statements so that PostgreSQL prepares each SQL text once per
 * connection. The hot path has a small, bounded set of texts (one per table and batch size).
 */
function preparedStatementNames(): (query: SqlQuery) => string {
  const names = new Map<string, string>();
  return (query) => {
    let name = names.get(query.sql);
    if (name === undefined) {
      name = `parley_w${names.size + 1}`;
      names.set(query.sql, name);
    }
    return name;
  };
}

/** The migrations recorded in the database (none when the table is missing). */
async function readApplied(pool: pg.Pool): Promise<AppliedMigration[]> {
  try {
    const table = await pool.query<{ t: string | null }>(
      "SELECT to_regclass('_prisma_migrations')::text AS t",
    );
    if (table.rows[0]?.t == null) return [];
    const rows = await pool.query<{ name: string; finished: boolean; rolled_back: boolean }>(
      'SELECT migration_name AS name, finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back ' +
        'FROM _prisma_migrations',
    );
    return rows.rows.map((r) => ({ name: r.name, finished: r.finished, rolledBack: r.rolled_back }));
  } catch (err) {
    throw new ParleyError('STORE_UNAVAILABLE', 'cannot read the applied migrations', { cause: err });
  }
}

/** A store backend on the PostgreSQL database at `url`. */
export function postgresqlBackend(url: string, options: PostgresqlBackendOptions): StoreBackend {
  // A session parameter set at connection startup: no extra round trip. (An `options` parameter
  // in the URL would replace it; `connect()` verifies the setting.)
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections,
    options: '-c synchronous_commit=on',
  });
  // An idle connection dropped by the server must not crash the process: the next query on the
  // pool opens a new one, and a query in flight fails with its own error.
  pool.on('error', () => {});
  let ended = false;
  const endPool = async () => {
    if (ended) return;
    ended = true;
    await pool.end();
  };
  return {
    engine: 'postgresql',
    dialect: postgresqlDialect,
    withInitLock: (fn) => withPgInitLock(pool, fn),
    migrate: async () => {
      const dir = migrationsDir('postgresql');
      if (!(await needsMigration(dir, await readApplied(pool)))) return [];
      return applyMigrations(new PrismaPg(pool), dir, schemaPath('postgresql'));
    },
    connect: async (): Promise<StoreConnections> => {
      let writer: SqlDriverAdapter | undefined;
      let prisma: StoreClient | undefined;
      try {
        const setting = await pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
        if (setting.rows[0]?.synchronous_commit !== 'on') {
          throw new ParleyError(
            'CONFIG_INVALID',
            `synchronous_commit is ${setting.rows[0]?.synchronous_commit}: do not override it in the URL`,
          );
        }
        writer = await new PrismaPg(pool, { statementNameGenerator: preparedStatementNames() }).connect();
        prisma = await createStoreClient('postgresql', new PrismaPg(pool));
        await prisma.$connect();
      } catch (err) {
        await Promise.allSettled([writer?.dispose(), prisma?.$disconnect()]);
        if (err instanceof ParleyError) throw err;
        throw new ParleyError('STORE_UNAVAILABLE', 'cannot connect to PostgreSQL', { cause: err });
      }
      const [w, p] = [writer, prisma];
      return {
        prisma: p,
        hot: pgHotPath(w, pool),
        // A read-write transaction that writes nothing: a standby or a read-only database fails it.
        probeWritable: async () => {
          try {
            await pool.query('BEGIN READ WRITE; ROLLBACK');
            return { writable: true };
          } catch (err) {
            const code = (err as { code?: unknown }).code;
            return {
              writable: false,
              code: typeof code === 'string' ? code : 'STORE_UNAVAILABLE',
              message: String((err as Error).message),
            };
          }
        },
        close: async () => {
          await Promise.allSettled([p.$disconnect(), w.dispose()]);
          await endPool();
        },
      };
    },
    dispose: endPool,
  };
}
