/**
 * PrismaClient for either engine. The two generated clients (`generated/sqlite`,
 * `generated/postgresql`) come from schemas with the same models and fields (checked by
 * `scripts/prisma/sync-schemas.ts --check`), so the store codes against one client type. One
 * difference: fields marked `// postgresql: BigInt` in the SQLite schema (log ids, health event
 * and resync run ids, resync byte counters) come back as `bigint` from the PostgreSQL client
 * though the type says `number`; the store reads the log ids only to order by them, and the
 * others through `Number()`.
 */
import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { PrismaClient } from './generated/sqlite/client.js';
import type { StoreEngine } from './types.js';

/** The typed client the store uses, whatever the engine. */
export type StoreClient = PrismaClient;

/**
 * Creates the engine's generated PrismaClient over a driver-adapter factory. The generated
 * client of the other engine is never loaded.
 */
export async function createStoreClient(
  engine: StoreEngine,
  adapter: SqlDriverAdapterFactory,
): Promise<StoreClient> {
  if (engine === 'sqlite') {
    const { PrismaClient } = await import('./generated/sqlite/client.js');
    return new PrismaClient({ adapter });
  }
  const { PrismaClient } = await import('./generated/postgresql/client.js');
  // Same models, same query API: the provider baked into the client and the BigInt fields differ.
  return new PrismaClient({ adapter }) as unknown as StoreClient;
}
