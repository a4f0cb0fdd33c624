/**
 * Durable storage of a Parley node: the `ParleyStore` contract and its Prisma implementation
 * on SQLite (embedded default) and PostgreSQL.
 */
export type { GroupCommitOptions } from './group-commit.js';
export { DEFAULT_MAX_BATCH } from './group-commit.js';
export type { OpenStoreOptions } from './open-store.js';
export { DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, openStore } from './open-store.js';
export type * from './types.js';
