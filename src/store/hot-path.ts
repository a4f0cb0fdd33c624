/**
 * The store's hot path below Prisma: the group-commit writer and the point reads a channel makes
 * for every command (a cid lookup, an object's versions, its head).
 *
 * Why not PrismaClient here. One typed `findUnique` costs far more CPU (query plan
 * interpretation, result mapping, a statement prepared anew on every call) than the same read on
 * a cached prepared statement, and with three such reads per command they were a large share of
 * the receiving node's CPU (docs/benchmarks.md). PrismaClient
 * stays for everything else (rare writes, listings, the sync and health repositories, Studio).
 *
 * Each engine gives a {@link HotPath}: `sqlite-direct.ts` (better-sqlite3, synchronous, on the
 * writer's own connection) and `pg-direct.ts` (node-postgres, named prepared statements).
 */
import type { WriteStatement } from './commit-sql.js';
import type { CommandRecord, CommandStatus, Direction, ObjectHead, StoredVersion } from './types.js';

/** Writes a batch of statements atomically. */
export interface BatchWriter {
  /**
   * Writes `statements` in one transaction: all of them are durable when this resolves, none of
   * them when it rejects.
   *
   * @throws StoreConflict when a statement violates a constraint or misses its expected row count.
   * @throws ParleyError `STORE_UNAVAILABLE` when the database fails.
   */
  write(statements: readonly WriteStatement[]): Promise<void>;
}

/**
 * The reads a channel makes for every command, by primary key, and the set reads of a resync
 * (a batch of objects' logs or heads in one statement). They see committed data only.
 */
export interface HotReads {
  findCommand(peer: string, cid: string): Promise<CommandRecord | undefined>;
  /** In chain order (an object's successful commands commit in chain order: log order). */
  versions(peer: string, referenceId: string): Promise<StoredVersion[]>;
  head(peer: string, referenceId: string): Promise<ObjectHead | undefined>;
  /** The signed logs of `referenceIds` in log order: every id has an entry, empty when unknown. */
  histories(peer: string, referenceIds: readonly string[]): Promise<Map<string, CommandRecord[]>>;
  /** The heads of those of `referenceIds` this store knows. */
  heads(peer: string, referenceIds: readonly string[]): Promise<Map<string, ObjectHead>>;
  /** Those of `cids` in the signed log. */
  knownCids(peer: string, cids: readonly string[]): Promise<Set<string>>;
}

/** An engine's writer and hot reads. */
export interface HotPath extends BatchWriter, HotReads {}

const COMMAND_COLUMNS =
  'peer, cid, direction, reference_id, read_version, write_version, request_jws, response_jws, ' +
  'status, error_code';
const HEAD_COLUMNS = 'peer, reference_id, head_version, open, version_count';

/**
 * The SQL of the hot reads; `$n` placeholders are rewritten per engine, and so is `IN LIST($n)`:
 * membership in a list bound as one parameter (a JSON array through `json_each` on SQLite, a
 * `text[]` on PostgreSQL), so one prepared statement serves a list of any length.
 */
export const HOT_SQL = {
  findCommand: `SELECT ${COMMAND_COLUMNS} FROM command_log WHERE peer = $1 AND cid = $2`,
  versions:
    'SELECT version, previous_version, payment, open FROM object_version ' +
    'WHERE peer = $1 AND reference_id = $2 ORDER BY log_id',
  head: `SELECT ${HEAD_COLUMNS} FROM object_head WHERE peer = $1 AND reference_id = $2`,
  histories:
    `SELECT ${COMMAND_COLUMNS} FROM command_log WHERE peer = $1 AND reference_id IN LIST($2) ` +
    'ORDER BY id',
  heads: `SELECT ${HEAD_COLUMNS} FROM object_head WHERE peer = $1 AND reference_id IN LIST($2)`,
  knownCids: 'SELECT cid FROM command_log WHERE peer = $1 AND cid IN LIST($2)',
} as const;

type Row = Record<string, unknown>;

/** Engines give booleans as 0/1 (SQLite) or true/false (PostgreSQL). */
const bool = (value: unknown): boolean => value === true || value === 1 || value === 1n;
const textOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);

export function commandFromRow(r: Row): CommandRecord {
  return {
    peer: String(r['peer']),
    cid: String(r['cid']),
    direction: r['direction'] as Direction,
    referenceId: String(r['reference_id']),
    readVersion: textOrNull(r['read_version']),
    writeVersion: String(r['write_version']),
    requestJws: String(r['request_jws']),
    responseJws: String(r['response_jws']),
    status: r['status'] as CommandStatus,
    errorCode: textOrNull(r['error_code']),
  };
}

export function versionFromRow(r: Row): StoredVersion {
  return {
    version: String(r['version']),
    previousVersion: textOrNull(r['previous_version']),
    payment: String(r['payment']),
    open: bool(r['open']),
  };
}

export function headFromRow(r: Row): ObjectHead {
  return {
    peer: String(r['peer']),
    referenceId: String(r['reference_id']),
    headVersion: String(r['head_version']),
    open: bool(r['open']),
    versionCount: Number(r['version_count']),
  };
}

/** Groups log rows by object, each in log order, with an entry for every requested id. */
export function historiesFromRows(
  referenceIds: readonly string[],
  rows: readonly Row[],
): Map<string, CommandRecord[]> {
  const out = new Map<string, CommandRecord[]>();
  for (const id of referenceIds) out.set(id, []);
  for (const row of rows) {
    const record = commandFromRow(row);
    out.get(record.referenceId)?.push(record);
  }
  return out;
}

export function headsFromRows(rows: readonly Row[]): Map<string, ObjectHead> {
  const out = new Map<string, ObjectHead>();
  for (const row of rows) {
    const head = headFromRow(row);
    out.set(head.referenceId, head);
  }
  return out;
}
