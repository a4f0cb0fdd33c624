/**
 * SQLite through better-sqlite3: a database file in WAL mode with `synchronous=FULL`, so a
 * commit is on disk (WAL fsynced) before it is acknowledged.
 */
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import Database from 'better-sqlite3';
import { ParleyError } from '../errors.js';
import { createStoreClient, type StoreClient } from './client.js';
import { sqliteDialect } from './dialect.js';
import { prepareSqliteFiles } from './file-modes.js';
import { sqliteLockPath, withSqliteInitLock } from './init-lock.js';
import {
  type AppliedMigration,
  applyMigrations,
  migrationsDir,
  needsMigration,
  schemaPath,
} from './migrations.js';
import { sqliteHotPath } from './sqlite-direct.js';
import { type SqliteWriter, startSqliteWriter } from './sqlite-writer.js';
import type { StoreBackend, StoreConnections } from './store-backend.js';
import type { WriteProbe } from './types.js';

/** SQLite knobs. */
export interface SqliteBackendOptions {
  /** How long a write waits for another process's lock before failing. */
  busyTimeoutMs: number;
  /** WAL pages between automatic checkpoints (see {@link writerPragmas}). */
  walCheckpointPages: number;
}

/** Default of {@link SqliteBackendOptions.walCheckpointPages}: about 4 MB of WAL (4 KiB pages). */
export const DEFAULT_WAL_CHECKPOINT_PAGES = 1000;

/** SQLite's page size, which Parley's databases keep. */
const PAGE_BYTES = 4096;

/** Bytes free for this process on the volume of `folder` (0 when it cannot be read). */
async function freeBytes(folder: string): Promise<number> {
  try {
    const fs = await statfs(folder);
    return fs.bavail * fs.bsize;
  } catch {
    return 0;
  }
}

/**
 * The write probe of a SQLite store: the writer's probe (`sqlite-writer.ts`), and the volume's
 * free space. After a failed write the store counts as writable again once the WAL is
 * checkpointed and truncated and a checkpoint interval of WAL fits on the volume; before that,
 * the next write tells.
 */
async function probeSqlite(writer: SqliteWriter, path: string, walPages: number): Promise<WriteProbe> {
  const [found, free] = await Promise.all([writer.probe(), freeBytes(dirname(path))]);
  const spaceFree = free >= walPages * PAGE_BYTES;
  if (!found.ok) {
    return {
      writable: false,
      spaceFree,
      code: found.code ?? 'STORE_UNAVAILABLE',
      message: found.message ?? '',
    };
  }
  if (found.failed && !spaceFree) {
    return { writable: false, spaceFree, code: 'SQLITE_FULL', message: `${free} bytes free on the volume` };
  }
  return { writable: true, spaceFree };
}

/** Pragmas of every connection: durability first. (`journal_mode` is stored in the file.) */
const CONNECTION_PRAGMAS = ['PRAGMA synchronous = FULL', 'PRAGMA foreign_keys = ON'];

/**
 * Writer-only tuning: every commit inserts into four indexes at random places (cid, reference
 * id, version, previous version), so each batch dirties hundreds of pages, and a larger page
 * cache keeps those index pages in memory.
 *
 * The WAL is checkpointed every `walPages` pages (docs/storage.md). A larger value lets a
 * checkpoint write each hot page once for many batches (more write throughput:
 * docs/benchmarks.md), but the WAL grows that large between checkpoints: on a volume smaller
 * than that it fills the disk before its first checkpoint. After a checkpoint resets it, the WAL
 * file is cut back to twice that size.
 */
export function writerPragmas(walPages: number): string[] {
  return [
    'PRAGMA journal_mode = WAL',
    ...CONNECTION_PRAGMAS,
    'PRAGMA cache_size = -65536',
    `PRAGMA wal_autocheckpoint = ${walPages}`,
    `PRAGMA journal_size_limit = ${walPages * 2 * PAGE_BYTES}`,
  ];
}

/**
 * The main thread's connection for the hot point reads: read-only by intent, with a page cache
 * of its own (16 MB) for the indexes those reads walk.
 */
const READER_PRAGMAS = [...CONNECTION_PRAGMAS, 'PRAGMA query_only = ON', 'PRAGMA cache_size = -16384'];

/** The migrations recorded in the database file (none when the file or the table is missing). */
function readApplied(path: string): AppliedMigration[] {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return []; // no database yet
  }
  try {
    const table = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'")
      .get();
    if (table === undefined) return [];
    const rows = db
      .prepare('SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations')
      .all() as Array<{ migration_name: string; finished_at: unknown; rolled_back_at: unknown }>;
    return rows.map((r) => ({
      name: r.migration_name,
      finished: r.finished_at !== null,
      rolledBack: r.rolled_back_at !== null,
    }));
  } catch (err) {
    throw new ParleyError('STORE_UNAVAILABLE', `cannot read the migrations of ${path}`, { cause: err });
  } finally {
    db.close();
  }
}

/** A store backend on the SQLite file at `path` (absolute). */
export function sqliteBackend(path: string, options: SqliteBackendOptions): StoreBackend {
  const factory = () => new PrismaBetterSqlite3({ url: path, timeout: options.busyTimeoutMs });
  return {
    engine: 'sqlite',
    dialect: sqliteDialect,
    withInitLock: (fn) => {
      try {
        prepareSqliteFiles(path, sqliteLockPath(path));
      } catch (err) {
        throw new ParleyError('STORE_UNAVAILABLE', `cannot create ${path} or its folder`, { cause: err });
      }
      return withSqliteInitLock(path, fn);
    },
    migrate: async () => {
      const dir = migrationsDir('sqlite');
      if (!(await needsMigration(dir, readApplied(path)))) return [];
      return applyMigrations(factory(), dir, schemaPath('sqlite'));
    },
    connect: async (): Promise<StoreConnections> => {
      let writer: SqliteWriter | undefined;
      let reader: Database.Database | undefined;
      let prisma: StoreClient | undefined;
      try {
        writer = await startSqliteWriter(
          path,
          writerPragmas(options.walCheckpointPages),
          options.busyTimeoutMs,
        );
        reader = new Database(path, { timeout: options.busyTimeoutMs });
        reader.exec(READER_PRAGMAS.join(';\n'));
        prisma = await createStoreClient('sqlite', factory());
        await prisma.$connect();
        for (const pragma of CONNECTION_PRAGMAS) await prisma.$executeRawUnsafe(pragma);
      } catch (err) {
        reader?.close();
        await Promise.allSettled([writer?.close(), prisma?.$disconnect()]);
        if (err instanceof ParleyError) throw err;
        throw new ParleyError('STORE_UNAVAILABLE', `cannot open ${path}`, { cause: err });
      }
      const [w, r, p] = [writer, reader, prisma];
      return {
        prisma: p,
        hot: sqliteHotPath(r, w),
        probeWritable: () => probeSqlite(w, path, options.walCheckpointPages),
        close: async () => {
          await Promise.allSettled([p.$disconnect(), w.close()]);
          r.close();
        },
      };
    },
    dispose: async () => {},
  };
}
