/**
 * A `pg.Pool` that Prisma's wasm schema engine can introspect through.
 *
 * The engine introspects PostgreSQL (shadow database of `diff` from a migrations folder) with
 * catalog queries that return columns of the internal type `"char"` (OID 18, e.g.
 * `pg_constraint.contype`), which `@prisma/adapter-pg` 7.10 rejects as UnsupportedNativeDataType.
 * This pool reports such columns as `text` (OID 25); pg already hands their values over as
 * one-character strings. Used only for generating migrations, never on the data path.
 */
import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import pg from 'pg';

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

interface FieldLike {
  dataTypeID: number;
}

function charColumnsAsText<T>(result: T): T {
  const fields = (result as { fields?: FieldLike[] } | undefined)?.fields;
  if (Array.isArray(fields)) {
    for (const field of fields) if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
  }
  return result;
}

/** Creates the pool; pass it to `new PrismaPg(pool, { disposeExternalPool: true })`. */
export function createIntrospectionPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString });
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  Object.assign(pool, {
    query: (...args: unknown[]): unknown => {
      const out = query(...args);
      return out instanceof Promise ? out.then(charColumnsAsText) : out;
    },
  });
  return pool;
}

/**
 * A migration-aware adapter factory for generating migrations on PostgreSQL: connections go
 * through {@link createIntrospectionPool}, and the shadow database is a fresh
 * `parley_shadow_<random>` database on the same server, dropped when the engine lets it go.
 * (`PrismaPg#connectToShadowDb` keeps the original URL's database when the URL names one.)
 */
export function createPgMigrationFactory(connectionString: string): SqlMigrationAwareDriverAdapterFactory {
  const main = new PrismaPg(createIntrospectionPool(connectionString), { disposeExternalPool: true });
  return {
    provider: main.provider,
    adapterName: main.adapterName,
    connect: () => main.connect(),
    connectToShadowDb: async () => {
      const name = `parley_shadow_${randomBytes(8).toString('hex')}`;
      await adminQuery(connectionString, `CREATE DATABASE "${name}"`);
      const url = new URL(connectionString);
      url.pathname = `/${name}`;
      const adapter = await new PrismaPg(createIntrospectionPool(url.toString()), {
        disposeExternalPool: true,
      }).connect();
      const dispose = adapter.dispose.bind(adapter);
      return Object.assign(adapter, {
        dispose: async () => {
          await dispose();
          await adminQuery(connectionString, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        },
      });
    },
  };
}

async function adminQuery(connectionString: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
