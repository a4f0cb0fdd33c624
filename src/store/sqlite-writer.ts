/**
 * The SQLite group-commit writer on its own thread.
 *
 * better-sqlite3 is synchronous: on the main thread a batch blocks the event loop from BEGIN to
 * the fsync of COMMIT (milliseconds for a few hundred rows of signed JWS), and so does every WAL
 * checkpoint, and a sending node spent a large part of its main thread there while frames,
 * signatures and heartbeats waited (docs/benchmarks.md). Here the writer's connection lives
 * in a worker thread: the main thread hands a batch over (one message, parameters already in
 * SQLite's types) and keeps working until the batch is durable.
 *
 * The worker is plain JavaScript run with `eval`, so it needs no loader for TypeScript whatever
 * runs the node (tsx, vitest, a build). It only knows statements, row counts and constraint
 * errors; what a failure means stays here.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { ArgType } from '@prisma/driver-adapter-utils';
import { ParleyError } from '../errors.js';
import { StoreConflict } from './batch-writer.js';
import type { WriteStatement } from './commit-sql.js';
import type { BatchWriter } from './hot-path.js';

/** What {@link SqliteWriter.probe} found. */
export interface WriterProbe {
  /** The writer took the write lock (and, after a failed write, checkpointed and truncated the WAL). */
  ok: boolean;
  /** The last write failed for want of space or an I/O error (`SQLITE_FULL`, `SQLITE_IOERR*`), none committed since. */
  failed: boolean;
  /** The driver's code of the probe's failure (`SQLITE_FULL`, say). */
  code?: string;
  message?: string;
}

/** A writer thread; {@link SqliteWriter.close} ends it. */
export interface SqliteWriter extends BatchWriter {
  /**
   * Whether the writer can write, without allocating a page: after a failed write it first
   * checkpoints the WAL into the database file and truncates it (`wal_checkpoint(TRUNCATE)`,
   * which gives the WAL's space back once the database file can grow), then runs
   * `BEGIN IMMEDIATE; ROLLBACK`. Never rejects.
   */
  probe(): Promise<WriterProbe>;
  /** Waits for the batches in flight, closes the connection and ends the thread. Idempotent. */
  close(): Promise<void>;
}

/** What the worker answers for one batch. */
type Reply =
  | ({ id: number; probe: true } & WriterProbe)
  | { id: number; ok: true; probe?: undefined }
  | {
      id: number;
      ok: false;
      /** `constraint`: statement `index` violated a constraint; `rows`: it touched `changes` rows. */
      probe?: undefined;
      kind: 'constraint' | 'rows' | 'failed';
      index: number;
      changes: number;
      message: string;
      code: string | null;
    };

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs });
  db.exec(workerData.pragmas);
} catch (err) {
  parentPort.postMessage({ ready: false, message: String(err && err.message), code: (err && err.code) || null });
  process.exit(0);
}
const limit = workerData.statementCacheLimit;
const cache = new Map();
function prepare(sql) {
  let st = cache.get(sql);
  if (st === undefined) {
    if (cache.size >= limit) cache.delete(cache.keys().next().value);
    st = db.prepare(sql);
    cache.set(sql, st);
  }
  return st;
}
const begin = db.prepare('BEGIN IMMEDIATE');
const commit = db.prepare('COMMIT');
const rollback = db.prepare('ROLLBACK');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)');
// The last write failed for want of space or an I/O error (not its content, nor a lock held by
// another process): the WAL may fill the volume, and the automatic checkpoint runs only after a
// commit.
let failed = false;
function truncateWal() {
  const row = checkpoint.get();
  if (row.busy !== 0) throw Object.assign(new Error('checkpoint blocked by a reader'), { code: 'SQLITE_BUSY' });
}
function probe(m) {
  try {
    if (failed) truncateWal();
    begin.run();
    rollback.run();
    parentPort.postMessage({ id: m.id, probe: true, ok: true, failed });
  } catch (err) {
    try { if (db.inTransaction) rollback.run(); } catch {}
    parentPort.postMessage({ id: m.id, probe: true, ok: false, failed, message: String(err && err.message), code: (err && err.code) || null });
  }
}
parentPort.on('message', (m) => {
  if (m.op === 'close') {
    try { db.close(); } catch {}
    parentPort.postMessage({ closed: true });
    return;
  }
  if (m.op === 'probe') return probe(m);
  // Space may be back: give the WAL back to the volume before writing more into it.
  if (failed) { try { truncateWal(); } catch {} }
  let index = -1;
  let changes = 0;
  let kind = 'failed';
  try {
    begin.run();
    for (index = 0; index < m.statements.length; index++) {
      const st = m.statements[index];
      try {
        changes = prepare(st.sql).run(st.args).changes;
      } catch (err) {
        if (typeof (err && err.code) === 'string' && err.code.startsWith('SQLITE_CONSTRAINT')) kind = 'constraint';
        throw err;
      }
      if (st.expectRows !== undefined && changes !== st.expectRows) {
        kind = 'rows';
        throw new Error('row count');
      }
    }
    index = -1;
    commit.run();
    failed = false;
    parentPort.postMessage({ id: m.id, ok: true });
  } catch (err) {
    try { if (db.inTransaction) rollback.run(); } catch {}
    if (kind === 'failed' && /^SQLITE_(FULL|IOERR)/.test((err && err.code) || '')) failed = true;
    parentPort.postMessage({
      id: m.id, ok: false, kind, index, changes,
      message: String(err && err.message), code: (err && err.code) || null,
    });
  }
});
parentPort.postMessage({ ready: true });
`;

/** Distinct SQL texts the worker keeps prepared: one per table and batch size on the hot path. */
const STATEMENT_CACHE_LIMIT = 1024;

/**
 * A value as the Prisma better-sqlite3 adapter stores it, so that rows written here read back
 * the same through PrismaClient: booleans as 0/1, date-times as ISO-8601 text with `+00:00`.
 */
export function toSqliteValue(value: unknown, type: ArgType | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (type?.scalarType === 'datetime' && typeof value === 'string') value = new Date(value);
  if (value instanceof Date) return value.toISOString().replace('Z', '+00:00');
  if (type?.scalarType === 'int' && typeof value === 'string') return Number.parseInt(value, 10);
  return value;
}

/**
 * Starts the writer thread on the database file at `path` and runs `pragmas` on its connection.
 *
 * @throws ParleyError `STORE_UNAVAILABLE` when the connection cannot be opened.
 */
export async function startSqliteWriter(
  path: string,
  pragmas: readonly string[],
  busyTimeoutMs: number,
): Promise<SqliteWriter> {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path,
      pragmas: pragmas.join(';\n'),
      busyTimeoutMs,
      driver,
      statementCacheLimit: STATEMENT_CACHE_LIMIT,
    },
  });
  const pending = new Map<
    number,
    { statements: readonly WriteStatement[]; resolve: () => void; reject: (err: unknown) => void }
  >();
  const inflight = new Set<Promise<unknown>>();
  const probes = new Map<number, (probe: WriterProbe) => void>();
  let nextId = 1;
  let broken: ParleyError | undefined;
  let closing: Promise<void> | undefined;

  const fail = (err: ParleyError) => {
    broken ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    for (const answer of probes.values()) answer({ ok: false, failed: true, message: err.message });
    probes.clear();
  };

  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: { ready?: boolean; message?: string }) => {
      worker.off('error', onError);
      if (m.ready) resolve();
      else reject(new ParleyError('STORE_UNAVAILABLE', `cannot open ${path}: ${m.message}`));
    };
    const onError = (err: unknown) => {
      worker.off('message', onMessage);
      reject(new ParleyError('STORE_UNAVAILABLE', `cannot start the writer of ${path}`, { cause: err }));
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  }).catch(async (err: unknown) => {
    await worker.terminate();
    throw err;
  });

  worker.on('message', (reply: Reply) => {
    if (reply.probe) {
      const { id: _, probe: __, ...found } = reply;
      probes.get(reply.id)?.(found);
      probes.delete(reply.id);
      return;
    }
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.ok) {
      p.resolve();
      return;
    }
    const st = p.statements[reply.index];
    if (st && reply.kind === 'constraint') {
      p.reject(new StoreConflict(st.onConflict, `constraint violated: ${reply.message}`));
    } else if (st && reply.kind === 'rows') {
      p.reject(
        new StoreConflict(
          st.onConflict,
          `conditional write touched ${reply.changes} of ${st.expectRows} rows`,
        ),
      );
    } else {
      const cause = Object.assign(new Error(reply.message), { code: reply.code });
      p.reject(new ParleyError('STORE_UNAVAILABLE', 'write transaction failed', { cause }));
    }
  });
  worker.on('error', (err) =>
    fail(new ParleyError('STORE_UNAVAILABLE', 'the writer thread failed', { cause: err })),
  );
  worker.on('exit', () => fail(new ParleyError('STORE_CLOSED', 'the writer thread has ended')));
  // Idle, the thread must not keep the process alive; with a batch in flight it must.
  worker.unref();

  return {
    write(statements) {
      if (broken) return Promise.reject(broken);
      if (closing !== undefined)
        return Promise.reject(new ParleyError('STORE_CLOSED', 'the store is closed'));
      const id = nextId++;
      const message = {
        id,
        statements: statements.map((st) => ({
          sql: st.sql,
          args: st.args.map((a, i) => toSqliteValue(a, st.argTypes[i])),
          expectRows: st.expectRows,
        })),
      };
      const written = new Promise<void>((resolve, reject) => {
        pending.set(id, { statements, resolve, reject });
        if (pending.size === 1) worker.ref();
        worker.postMessage(message);
      });
      const settled: Promise<void> = written.then(
        () => {
          inflight.delete(settled);
        },
        () => {
          inflight.delete(settled);
        },
      );
      inflight.add(settled);
      return written;
    },
    probe() {
      if (broken) return Promise.resolve({ ok: false, failed: true, message: broken.message });
      if (closing !== undefined)
        return Promise.resolve({ ok: false, failed: false, message: 'the store is closed' });
      const id = nextId++;
      return new Promise<WriterProbe>((resolve) => {
        probes.set(id, resolve);
        worker.postMessage({ op: 'probe', id });
      });
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled([...inflight]);
        if (!broken) {
          worker.ref();
          const closed = new Promise<void>((resolve) => {
            worker.on('message', (m: { closed?: boolean }) => {
              if (m.closed) resolve();
            });
            worker.once('exit', () => resolve());
          });
          worker.postMessage({ op: 'close' });
          await closed;
        }
        await worker.terminate();
      })();
      return closing;
    },
  };
}
