/**
 * `openStore`: the one way to get a `ParleyStore`.
 */
import { randomBytes } from 'node:crypto';
import { ParleyError } from '../errors.js';
import type { StoreClient } from './client.js';
import { type GroupCommitOptions, resolveMaxBatch } from './group-commit.js';
import { PrismaStore } from './prisma-store.js';
import { DEFAULT_WAL_CHECKPOINT_PAGES, sqliteBackend } from './sqlite-backend.js';
import type { StoreBackend, StoreConnections } from './store-backend.js';
import { parseStoreUrl } from './store-url.js';
import type { ParleyStore, StoreIdentity } from './types.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /**
   * Where the database is. `file:` URL or plain path → SQLite (created if missing; its folder
   * too); `postgres://` / `postgresql://` → PostgreSQL (the database must exist).
   */
  url: string;
  /** Group-commit knobs (see `GroupCommitOptions`). */
  groupCommit?: GroupCommitOptions;
  /**
   * SQLite only: how long a write waits for another process's lock before failing with
   * `STORE_UNAVAILABLE`.
   * @default 5000
   */
  busyTimeoutMs?: number;
  /**
   * SQLite only: WAL pages (4 KiB) between automatic checkpoints; the WAL file is cut back to
   * twice that after one (docs/storage.md).
   * @default 1000
   */
  walCheckpointPages?: number;
  /**
   * PostgreSQL only: most connections of the store's pool.
   * @default 10
   */
  maxConnections?: number;
}

/** Default of {@link OpenStoreOptions.busyTimeoutMs}. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/** Default of {@link OpenStoreOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 10;

/** A new store epoch: 128 random bits, lowercase hex. */
export function newStoreEpoch(): string {
  return randomBytes(16).toString('hex');
}

/** Reads this database's identity, creating it on the first open. Runs under the init lock. */
async function ensureIdentity(prisma: StoreClient): Promise<StoreIdentity> {
  const row =
    (await prisma.identity.findUnique({ where: { id: 1 } })) ??
    (await prisma.identity.create({ data: { id: 1, epoch: newStoreEpoch(), createdAt: new Date() } }));
  return { epoch: row.epoch, createdAtMs: row.createdAt.getTime() };
}

/**
 * The backend of the URL's engine. The PostgreSQL backend (pg, its Prisma adapter) is loaded
 * only for a PostgreSQL URL: a SQLite node never loads it.
 */
async function backendFor(options: OpenStoreOptions): Promise<StoreBackend> {
  const target = parseStoreUrl(options.url);
  if (target.engine === 'sqlite') {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new ParleyError('CONFIG_INVALID', `busyTimeoutMs must be an integer >= 0, got ${busyTimeoutMs}`);
    }
    const walCheckpointPages = options.walCheckpointPages ?? DEFAULT_WAL_CHECKPOINT_PAGES;
    if (!Number.isSafeInteger(walCheckpointPages) || walCheckpointPages < 1) {
      throw new ParleyError(
        'CONFIG_INVALID',
        `walCheckpointPages must be a positive integer, got ${walCheckpointPages}`,
      );
    }
    return sqliteBackend(target.path, { busyTimeoutMs, walCheckpointPages });
  }
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 2) {
    throw new ParleyError('CONFIG_INVALID', `maxConnections must be an integer >= 2, got ${maxConnections}`);
  }
  const { postgresqlBackend } = await import('./postgresql-backend.js');
  return postgresqlBackend(target.url, { maxConnections });
}

/**
 * Opens (creating if needed) a store: picks the engine from the URL, applies pending
 * migrations (recorded in `_prisma_migrations`; concurrent openers of the same database wait for
 * each other), creates the database's identity on first open, and returns the store.
 *
 * @throws ParleyError `CONFIG_INVALID` (bad URL or option), `STORE_UNAVAILABLE` (database
 * unreachable), `STORE_MIGRATION_FAILED`.
 */
export async function openStore(options: OpenStoreOptions): Promise<ParleyStore> {
  const groupCommit = {
    maxBatch: resolveMaxBatch(options.groupCommit),
    events: options.groupCommit?.events === true,
  };
  const backend = await backendFor(options);
  let connections: StoreConnections | undefined;
  try {
    return await backend.withInitLock(async () => {
      await backend.migrate();
      connections = await backend.connect();
      const identity = await ensureIdentity(connections.prisma);
      return new PrismaStore(connections, backend.dialect, identity, groupCommit);
    });
  } catch (err) {
    // Only now, with the init lock released: closing may wait for every pooled connection.
    await connections?.close();
    await backend.dispose();
    if (err instanceof ParleyError) throw err;
    throw new ParleyError('STORE_UNAVAILABLE', 'cannot open the store', { cause: err });
  }
}
