/**
 * What `openStore` needs from an engine: initialisation under a cross-process lock, migrations,
 * and the two connections a store runs on.
 */
import type { StoreClient } from './client.js';
import type { Dialect } from './dialect.js';
import type { HotPath } from './hot-path.js';
import type { StoreEngine, WriteProbe } from './types.js';

/** The live connections of an open store. */
export interface StoreConnections {
  /** Typed queries: listings, the rare writes, the other repositories. */
  prisma: StoreClient;
  /** The group-commit writer and the per-command point reads (see `hot-path.ts`). */
  hot: HotPath;
  /** The write probe of `ParleyStore.probeWritable`; never rejects. */
  probeWritable(): Promise<WriteProbe>;
  /** Closes both connections and anything under them. */
  close(): Promise<void>;
}

/** One engine's way of opening a store. */
export interface StoreBackend {
  readonly engine: StoreEngine;
  readonly dialect: Dialect;
  /** Runs `fn` while no other opener (in any process) initialises the same database. */
  withInitLock<T>(fn: () => Promise<T>): Promise<T>;
  /** Applies pending migrations; returns the names of those applied now. */
  migrate(): Promise<string[]>;
  /** Opens the store's connections. */
  connect(): Promise<StoreConnections>;
  /** Releases what the backend holds when `connect()` was never called or failed. */
  dispose(): Promise<void>;
}
