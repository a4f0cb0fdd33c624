/**
 * The SQLite hot path (see `hot-path.ts`): point reads on a better-sqlite3 connection of the
 * main thread, prepared once; writes on the writer thread (`sqlite-writer.ts`).
 */
import type Database from 'better-sqlite3';
import { ParleyError } from '../errors.js';
import {
  type BatchWriter,
  commandFromRow,
  HOT_SQL,
  type HotPath,
  headFromRow,
  headsFromRows,
  historiesFromRows,
  versionFromRow,
} from './hot-path.js';

type Row = Record<string, unknown>;

/**
 * `$1`-style placeholders (see `HOT_SQL`: each used once, in order) as SQLite's `?`, and a list
 * parameter as the rows of a JSON array.
 */
const numbered = (sql: string): string =>
  sql.replace(/IN LIST\((\$\d+)\)/g, 'IN (SELECT value FROM json_each($1))').replace(/\$\d+/g, '?');

/**
 * The hot path: batches go to `writer` (the writer thread), point reads run on `db`, a connection
 * of this thread. SQLite in WAL mode gives a read the last committed state, so a read never sees
 * a batch the writer has not committed.
 */
export function sqliteHotPath(db: Database.Database, writer: BatchWriter): HotPath {
  const findCommand = db.prepare(numbered(HOT_SQL.findCommand));
  const versions = db.prepare(numbered(HOT_SQL.versions));
  const head = db.prepare(numbered(HOT_SQL.head));
  const histories = db.prepare(numbered(HOT_SQL.histories));
  const heads = db.prepare(numbered(HOT_SQL.heads));
  const knownCids = db.prepare(numbered(HOT_SQL.knownCids)).pluck();
  const rows = (statement: Database.Statement, ...args: unknown[]): Row[] => statement.all(...args) as Row[];

  /** Point reads run synchronously; a driver error becomes the caller's rejection. */
  function read<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'read failed', { cause: err }));
    }
  }

  return {
    write: (statements) => writer.write(statements),
    findCommand: (peer, cid) =>
      read(() => {
        const row = findCommand.get(peer, cid) as Record<string, unknown> | undefined;
        return row && commandFromRow(row);
      }),
    versions: (peer, referenceId) => read(() => rows(versions, peer, referenceId).map(versionFromRow)),
    head: (peer, referenceId) =>
      read(() => {
        const row = head.get(peer, referenceId) as Record<string, unknown> | undefined;
        return row && headFromRow(row);
      }),
    histories: (peer, referenceIds) =>
      read(() => historiesFromRows(referenceIds, rows(histories, peer, JSON.stringify(referenceIds)))),
    heads: (peer, referenceIds) => read(() => headsFromRows(rows(heads, peer, JSON.stringify(referenceIds)))),
    knownCids: (peer, cids) => read(() => new Set(knownCids.all(peer, JSON.stringify(cids)) as string[])),
  };
}
