/**
 * Multi-row SQL for the write hot path: a whole group of commits is written with a handful of
 * statements (one per table, chunked only for very large groups), whatever its size.
 *
 * Each statement says which error a constraint violation means for the commit that caused it,
 * and, for conditional writes, how many rows it must touch; a shortfall is a conflict too.
 */
import type { ArgType } from '@prisma/driver-adapter-utils';
import type { CommitPlan, HeadChange } from './commit-plan.js';
import type { Dialect, ParamType } from './dialect.js';
import type { OutboxRecord } from './types.js';

/** One parameterised statement in the driver adapters' format. */
export interface SqlStatement {
  sql: string;
  args: unknown[];
  argTypes: ArgType[];
}

/** The store error a failed write statement stands for. */
export type ConflictCode = 'STORE_DUPLICATE_COMMAND' | 'STORE_VERSION_CONFLICT' | 'STORE_LEASE_LOST';

/** A statement of a write batch. */
export interface WriteStatement extends SqlStatement {
  /** What a constraint violation (or a row-count shortfall) of this statement means. */
  onConflict: ConflictCode;
  /** When set, the statement must affect exactly this many rows. */
  expectRows?: number;
}

interface Column {
  name: string;
  type: ParamType;
}

/** Stays below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement. */
const MAX_PARAMS_PER_STATEMENT = 30_000;

const ARG_TYPES: Record<ParamType, ArgType> = {
  string: { scalarType: 'string', arity: 'scalar' },
  int: { scalarType: 'int', arity: 'scalar' },
  boolean: { scalarType: 'boolean', arity: 'scalar' },
  datetime: { scalarType: 'datetime', arity: 'scalar' },
};

const col = (name: string, type: ParamType = 'string'): Column => ({ name, type });

/**
 * A write statement whose placeholders are numbered in order of `values`: `build` gets a function
 * that returns the next placeholder (each value's type is given with it).
 */
export function writeStatement(
  d: Dialect,
  build: (p: () => string) => string,
  values: ReadonlyArray<readonly [unknown, ParamType]>,
  onConflict: ConflictCode,
  expectRows?: number,
): WriteStatement {
  let n = 0;
  const st: WriteStatement = {
    sql: build(() => d.param(++n)),
    args: values.map((v) => v[0]),
    argTypes: values.map((v) => ARG_TYPES[v[1]]),
    onConflict,
  };
  if (expectRows !== undefined) st.expectRows = expectRows;
  return st;
}

const LOG_COLUMNS: readonly Column[] = [
  col('peer'),
  col('cid'),
  col('direction'),
  col('reference_id'),
  col('read_version'),
  col('write_version'),
  col('request_jws'),
  col('response_jws'),
  col('status'),
  col('error_code'),
  col('created_at', 'datetime'),
];

/** A new version with the cid of its command; the insert looks up the command's log id. */
const VERSION_COLUMNS: readonly Column[] = [
  col('peer'),
  col('reference_id'),
  col('version'),
  col('previous_version'),
  col('payment'),
  col('open', 'boolean'),
  col('cid'),
];

const HEAD_COLUMNS: readonly Column[] = [
  col('peer'),
  col('reference_id'),
  col('head_version'),
  col('open', 'boolean'),
  col('version_count', 'int'),
  col('updated_at', 'datetime'),
];

const HEAD_MOVE_COLUMNS: readonly Column[] = [
  col('peer'),
  col('reference_id'),
  col('from_version'),
  col('to_version'),
  col('open', 'boolean'),
  col('added', 'int'),
  col('updated_at', 'datetime'),
];

const KEY_COLUMNS: readonly Column[] = [col('peer'), col('cid')];

const EVENT_COLUMNS: readonly Column[] = [
  col('peer'),
  col('reference_id'),
  col('cid'),
  col('kind'),
  col('created_at', 'datetime'),
];

const OUTBOX_COLUMNS: readonly Column[] = [
  col('peer'),
  col('cid'),
  col('reference_id'),
  col('read_version'),
  col('write_version'),
  col('request_jws'),
  col('created_at', 'datetime'),
  col('attempts', 'int'),
];

const names = (columns: readonly Column[]): string => columns.map((c) => c.name).join(', ');

/** SQL text depends only on (dialect, shape, row count): build each text once. */
const sqlCache = new Map<string, string>();

function cachedSql(key: string, build: () => string): string {
  let sql = sqlCache.get(key);
  if (sql === undefined) {
    sql = build();
    sqlCache.set(key, sql);
  }
  return sql;
}

/** `(p1, p2, …), (…)` for `rows` rows; `typed` adds the casts a CTE's VALUES needs. */
function valuesList(d: Dialect, columns: readonly Column[], rows: number, typed: boolean): string {
  const out: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) {
    out.push(`(${columns.map((c) => d.param(++n, typed ? c.type : undefined)).join(', ')})`);
  }
  return out.join(', ');
}

/**
 * Rows of the next chunk: at most `perChunk`, and on SQLite a power of two. A SQLite statement
 * runs in process, so several per table cost little, while each distinct row count is one more
 * statement to prepare and keep: powers of two bound them to about ten per table, all kept
 * prepared by the writer, where any count from 1 to a batch's size made hundreds, prepared
 * again and again. On PostgreSQL each statement is a round trip: one per table.
 */
function chunkRows(d: Dialect, remaining: number, perChunk: number): number {
  if (remaining >= perChunk || d.engine !== 'sqlite') return Math.min(remaining, perChunk);
  return 2 ** Math.floor(Math.log2(remaining));
}

/**
 * Splits rows into chunks that respect the parameter limit and builds one statement per chunk,
 * with `template(valuesSql)` giving the statement around the VALUES list. Rows keep their order.
 */
function chunked(
  d: Dialect,
  shape: string,
  columns: readonly Column[],
  rows: readonly unknown[][],
  typed: boolean,
  template: (values: string) => string,
  extra: (chunkRows: number) => Omit<WriteStatement, keyof SqlStatement>,
): WriteStatement[] {
  const perChunk = Math.max(1, Math.floor(MAX_PARAMS_PER_STATEMENT / columns.length));
  const argTypes = columns.map((c) => ARG_TYPES[c.type]);
  const out: WriteStatement[] = [];
  for (let start = 0; start < rows.length; ) {
    const chunk = rows.slice(start, start + chunkRows(d, rows.length - start, perChunk));
    start += chunk.length;
    const sql = cachedSql(`${d.engine}|${shape}|${chunk.length}`, () =>
      template(valuesList(d, columns, chunk.length, typed)),
    );
    const args: unknown[] = [];
    const types: ArgType[] = [];
    for (const row of chunk) {
      for (let i = 0; i < row.length; i++) {
        args.push(row[i]);
        types.push(argTypes[i]!);
      }
    }
    out.push({ sql, args, argTypes: types, ...extra(chunk.length) });
  }
  return out;
}

function headMoves(d: Dialect, moves: readonly HeadChange[], now: Date): WriteStatement[] {
  const rows = moves.map((h) => [h.peer, h.referenceId, h.fromVersion, h.toVersion, h.open, h.added, now]);
  return chunked(
    d,
    'head-move',
    HEAD_MOVE_COLUMNS,
    rows,
    true,
    (values) =>
      `WITH v (${names(HEAD_MOVE_COLUMNS)}) AS (VALUES ${values}) ` +
      'UPDATE object_head SET head_version = v.to_version, open = v.open, ' +
      'version_count = object_head.version_count + v.added, updated_at = v.updated_at ' +
      'FROM v WHERE object_head.peer = v.peer AND object_head.reference_id = v.reference_id ' +
      'AND object_head.head_version = v.from_version',
    // Every moved head must have been at the version the batch read, else the read was stale.
    (n) => ({ onConflict: 'STORE_VERSION_CONFLICT', expectRows: n }),
  );
}

/**
 * The statements of one commit transaction, in order: signed-log rows, versions, new heads,
 * moved heads, settled outbox rows, back-office events (one multi-row insert, when recorded).
 */
export function commitStatements(d: Dialect, plan: CommitPlan, now: Date): WriteStatement[] {
  const out: WriteStatement[] = [];
  const log = plan.commands.map((c) => [
    c.peer,
    c.cid,
    c.direction,
    c.referenceId,
    c.readVersion,
    c.writeVersion,
    c.requestJws,
    c.responseJws,
    c.status,
    c.errorCode,
    now,
  ]);
  out.push(
    ...chunked(
      d,
      'log',
      LOG_COLUMNS,
      log,
      false,
      (values) => `INSERT INTO command_log (${names(LOG_COLUMNS)}) VALUES ${values}`,
      () => ({ onConflict: 'STORE_DUPLICATE_COMMAND' }),
    ),
  );
  if (plan.versions.length > 0) {
    const rows = plan.versions.map(({ version: v, cid }) => [
      v.peer,
      v.referenceId,
      v.version,
      v.previousVersion,
      v.payment,
      v.open,
      cid,
    ]);
    out.push(
      ...chunked(
        d,
        'version',
        VERSION_COLUMNS,
        rows,
        true,
        (values) =>
          `WITH v (${names(VERSION_COLUMNS)}) AS (VALUES ${values}) ` +
          'INSERT INTO object_version (peer, reference_id, version, previous_version, payment, open, log_id) ' +
          'SELECT v.peer, v.reference_id, v.version, v.previous_version, v.payment, v.open, l.id ' +
          'FROM v JOIN command_log l ON l.peer = v.peer AND l.cid = v.cid',
        // The log rows were inserted just before, in the same transaction: all must be found.
        (n) => ({ onConflict: 'STORE_VERSION_CONFLICT', expectRows: n }),
      ),
    );
  }
  const created = plan.heads.filter((h) => h.fromVersion === null);
  if (created.length > 0) {
    const rows = created.map((h) => [h.peer, h.referenceId, h.toVersion, h.open, h.added, now]);
    out.push(
      ...chunked(
        d,
        'head-create',
        HEAD_COLUMNS,
        rows,
        false,
        (values) => `INSERT INTO object_head (${names(HEAD_COLUMNS)}) VALUES ${values}`,
        () => ({ onConflict: 'STORE_VERSION_CONFLICT' }),
      ),
    );
  }
  const moved = plan.heads.filter((h) => h.fromVersion !== null);
  if (moved.length > 0) out.push(...headMoves(d, moved, now));
  if (plan.settled.length > 0) {
    out.push(
      ...chunked(
        d,
        'settle',
        KEY_COLUMNS,
        plan.settled.map((k) => [k.peer, k.cid]),
        true,
        (values) => `DELETE FROM outbox WHERE (peer, cid) IN (VALUES ${values})`,
        () => ({ onConflict: 'STORE_DUPLICATE_COMMAND' }),
      ),
    );
  }
  if (plan.events.length > 0) {
    out.push(
      ...chunked(
        d,
        'event',
        EVENT_COLUMNS,
        plan.events.map((e) => [e.peer, e.referenceId, e.cid, e.kind, now]),
        false,
        (values) => `INSERT INTO webhook_event (${names(EVENT_COLUMNS)}) VALUES ${values}`,
        () => ({ onConflict: 'STORE_VERSION_CONFLICT' }),
      ),
    );
  }
  return out;
}

/**
 * Inserts outbox rows, skipping (and so failing the row count for) any command that is already
 * final in the signed log: an outbox entry must never shadow a logged command.
 */
export function enqueueStatements(d: Dialect, records: readonly OutboxRecord[]): WriteStatement[] {
  const rows = records.map((r) => [
    r.peer,
    r.cid,
    r.referenceId,
    r.readVersion,
    r.writeVersion,
    r.requestJws,
    new Date(r.createdAtMs),
    r.attempts,
  ]);
  return chunked(
    d,
    'enqueue',
    OUTBOX_COLUMNS,
    rows,
    true,
    (values) =>
      `WITH v (${names(OUTBOX_COLUMNS)}) AS (VALUES ${values}) ` +
      `INSERT INTO outbox (${names(OUTBOX_COLUMNS)}) SELECT ${names(OUTBOX_COLUMNS)} FROM v ` +
      'WHERE NOT EXISTS (SELECT 1 FROM command_log l WHERE l.peer = v.peer AND l.cid = v.cid)',
    (n) => ({ onConflict: 'STORE_DUPLICATE_COMMAND', expectRows: n }),
  );
}
