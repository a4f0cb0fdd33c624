/**
 * `ApiKeyStore` (src/admin/ports.ts) over the `api_key` table. The writes run as exclusive jobs
 * of the store's single writer (like peers and epochs); only the secret's hash is stored.
 */
import { API_KEY_SCOPES, type ApiKeyRecord, type ApiKeyScope, type ApiKeyStore } from '../admin/ports.js';
import { ParleyError } from '../errors.js';
import { PrismaStore } from './prisma-store.js';
import type { ParleyStore } from './types.js';

type Row = { id: string; name: string; scopes: string; createdAt: Date; revokedAt: Date | null };

function recordOf(row: Row): ApiKeyRecord {
  const scopes = row.scopes
    .split(',')
    .filter((s): s is ApiKeyScope => (API_KEY_SCOPES as readonly string[]).includes(s));
  return {
    id: row.id,
    name: row.name,
    scopes,
    createdAtMs: row.createdAt.getTime(),
    revokedAtMs: row.revokedAt === null ? null : row.revokedAt.getTime(),
  };
}

/**
 * The API keys of `store` (a store made by `openStore`).
 * @throws ParleyError `STORE_INVALID_INPUT` for another `ParleyStore` implementation.
 */
export function createApiKeyRepository(store: ParleyStore): ApiKeyStore {
  if (!(store instanceof PrismaStore)) {
    throw new ParleyError('STORE_INVALID_INPUT', 'the API key repository needs a store made by openStore');
  }
  const db = store.internals();
  const writing = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await db.exclusive(fn);
    } catch (err) {
      if (err instanceof ParleyError) throw err;
      throw new ParleyError('STORE_UNAVAILABLE', 'API key write failed', { cause: err });
    }
  };

  return {
    create(key) {
      return writing(async () =>
        recordOf(
          await db.prisma.apiKey.create({
            data: {
              id: key.id,
              name: key.name,
              scopes: key.scopes.join(','),
              secretHash: key.secretHash,
              createdAt: new Date(),
            },
          }),
        ),
      );
    },
    list() {
      return db.read(async () =>
        (await db.prisma.apiKey.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] })).map(recordOf),
      );
    },
    revoke(id) {
      return writing(async () => {
        await db.prisma.apiKey.updateMany({
          where: { id, revokedAt: null },
          data: { revokedAt: new Date() },
        });
        const row = await db.prisma.apiKey.findUnique({ where: { id } });
        return row === null ? undefined : recordOf(row);
      });
    },
    find(id) {
      return db.read(async () => {
        const row = await db.prisma.apiKey.findUnique({ where: { id } });
        return row === null ? undefined : { ...recordOf(row), secretHash: row.secretHash };
      });
    },
  };
}
