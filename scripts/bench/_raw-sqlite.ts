/**
 * The store bench's raw baseline: better-sqlite3 alone, on the main thread, writing the same rows
 * as `ParleyStore.commit` (the store's own plan and multi-row SQL, so the same tables, indexes and
 * statements), with the same pragmas (WAL, synchronous=FULL, the writer's cache and checkpoint
 * settings) and the same batching (one transaction of `maxBatch` commits, one per caller), each
 * prepared statement cached. No worker thread, no queue, no promises: what SQLite itself allows.
 */
import Database from 'better-sqlite3';
import { planCommits } from '../../src/store/commit-plan.js';
import { commitStatements } from '../../src/store/commit-sql.js';
import { sqliteDialect } from '../../src/store/dialect.js';
import { DEFAULT_WAL_CHECKPOINT_PAGES, writerPragmas } from '../../src/store/sqlite-backend.js';
import { toSqliteValue } from '../../src/store/sqlite-writer.js';
import type { CommitItem } from '../../src/store/types.js';

export interface RawSample {
  commits: number;
  ms: number;
  cpuUs: number;
}

/**
 * Writes batches of `callers` commits (caller c's item `seq`) into the migrated SQLite file at
 * `path` for `warmupMs` + `runMs`; counts the measured window only.
 */
export function rawSqliteCommits(
  path: string,
  item: (caller: number, seq: number) => CommitItem,
  callers: number,
  warmupMs: number,
  runMs: number,
): RawSample {
  const db = new Database(path);
  try {
    db.exec(writerPragmas(DEFAULT_WAL_CHECKPOINT_PAGES).join(';\n'));
    const cache = new Map<string, Database.Statement>();
    const prepared = (sql: string): Database.Statement => {
      let st = cache.get(sql);
      if (st === undefined) {
        st = db.prepare(sql);
        cache.set(sql, st);
      }
      return st;
    };
    const begin = db.prepare('BEGIN IMMEDIATE');
    const commit = db.prepare('COMMIT');
    let seq = 0;
    const batch = (): void => {
      const calls = Array.from({ length: callers }, (_, c) => [item(c, seq)]);
      seq++;
      const plan = planCommits(calls);
      if (plan === undefined) throw new Error('raw baseline: the batch does not chain');
      const statements = commitStatements(sqliteDialect, plan, new Date());
      begin.run();
      for (const st of statements) {
        const args = st.args.map((a, i) => toSqliteValue(a, st.argTypes[i]));
        const changes = prepared(st.sql).run(args).changes;
        if (st.expectRows !== undefined && changes !== st.expectRows)
          throw new Error('raw baseline: row count');
      }
      commit.run();
    };
    const warmEnd = performance.now() + warmupMs;
    while (performance.now() < warmEnd) batch();
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    let batches = 0;
    while (performance.now() - start < runMs) {
      batch();
      batches++;
    }
    const cpu = process.cpuUsage(cpu0);
    return { commits: batches * callers, ms: performance.now() - start, cpuUs: cpu.user + cpu.system };
  } finally {
    db.close();
  }
}
