/**
 * The PostgreSQL hot path (see `hot-path.ts`): batches through the Prisma pg driver adapter (its
 * transactions and error mapping; the writer's statements are prepared once per connection by
 * name), point reads as named prepared statements straight on the pool.
 */
import type { SqlDriverAdapter } from '@prisma/driver-adapter-utils';
import type pg from 'pg';
import { ParleyError } from '../errors.js';
import { writeBatch } from './batch-writer.js';
import {
  commandFromRow,
  HOT_SQL,
  type HotPath,
  headFromRow,
  headsFromRows,
  historiesFromRows,
  versionFromRow,
} from './hot-path.js';

type Row = Record<string, unknown>;

/** A list parameter (`IN LIST($n)` in `HOT_SQL`) as membership in a `text[]`. */
const pgSql = (sql: string): string => sql.replace(/IN LIST\((\$\d+)\)/g, '= ANY($1::text[])');

/** The hot path over `writer` (an adapter connection on `pool`) and `pool`. */
export function pgHotPath(writer: SqlDriverAdapter, pool: pg.Pool): HotPath {
  async function query(name: keyof typeof HOT_SQL, values: unknown[]): Promise<Row[]> {
    try {
      const result = await pool.query<Row>({
        name: `parley_hot_${name}`,
        text: pgSql(HOT_SQL[name]),
        values,
      });
      return result.rows;
    } catch (err) {
      throw new ParleyError('STORE_UNAVAILABLE', 'read failed', { cause: err });
    }
  }
  return {
    write: (statements) => writeBatch(writer, statements),
    findCommand: async (peer, cid) => {
      const [row] = await query('findCommand', [peer, cid]);
      return row && commandFromRow(row);
    },
    versions: async (peer, referenceId) => (await query('versions', [peer, referenceId])).map(versionFromRow),
    head: async (peer, referenceId) => {
      const [row] = await query('head', [peer, referenceId]);
      return row && headFromRow(row);
    },
    histories: async (peer, referenceIds) =>
      historiesFromRows(referenceIds, await query('histories', [peer, [...referenceIds]])),
    heads: async (peer, referenceIds) => headsFromRows(await query('heads', [peer, [...referenceIds]])),
    knownCids: async (peer, cids) =>
      new Set((await query('knownCids', [peer, [...cids]])).map((r) => String(r['cid']))),
  };
}
