/**
 * Integrity check of a store: the derived state (versions, heads, outbox) against the signed log.
 * Every check is one read-only statement, so each sees one consistent snapshot even while the
 * store is being written.
 */
import type { StoreClient } from './client.js';

/** Most violations reported per check, so a badly broken store still gives a readable answer. */
export const MAX_VIOLATIONS_PER_CHECK = 50;

type Row = Record<string, unknown>;

interface Check {
  /** Rows that violate the rule. Portable SQL: the same text runs on SQLite and PostgreSQL. */
  sql: string;
  describe(row: Row): string;
}

const s = (v: unknown): string => (v === null || v === undefined ? 'null' : String(v));

const CHECKS: readonly Check[] = [
  {
    sql: `SELECT peer, cid, direction, status, error_code FROM command_log
      WHERE direction NOT IN ('outbound', 'inbound') OR status NOT IN ('success', 'failure')
         OR (status = 'success' AND error_code IS NOT NULL) OR (status = 'failure' AND error_code IS NULL)`,
    describe: (r) =>
      `command ${s(r['peer'])}/${s(r['cid'])}: malformed (direction=${s(r['direction'])}, ` +
      `status=${s(r['status'])}, errorCode=${s(r['error_code'])})`,
  },
  {
    sql: `SELECT l.peer, l.cid FROM command_log l
      LEFT JOIN object_version v ON v.log_id = l.id
      WHERE l.status = 'success' AND v.log_id IS NULL`,
    describe: (r) => `command ${s(r['peer'])}/${s(r['cid'])}: successful but created no version`,
  },
  {
    sql: `SELECT v.peer, v.reference_id, v.version, l.cid, l.status FROM object_version v
      LEFT JOIN command_log l ON l.id = v.log_id
      WHERE l.id IS NULL OR l.status <> 'success' OR l.peer <> v.peer OR l.reference_id <> v.reference_id
         OR l.write_version <> v.version OR l.read_version IS DISTINCT FROM v.previous_version`,
    describe: (r) =>
      `version ${s(r['peer'])}/${s(r['reference_id'])}@${s(r['version'])}: no matching successful ` +
      `log entry (cid ${s(r['cid'])}, status ${s(r['status'])})`,
  },
  {
    sql: `SELECT v.peer, v.reference_id, v.version, v.previous_version FROM object_version v
      LEFT JOIN object_version p ON p.peer = v.peer AND p.reference_id = v.reference_id
        AND p.version = v.previous_version
      WHERE v.previous_version IS NOT NULL AND p.version IS NULL`,
    describe: (r) =>
      `version ${s(r['peer'])}/${s(r['reference_id'])}@${s(r['version'])}: previous version ` +
      `${s(r['previous_version'])} does not exist`,
  },
  {
    sql: `SELECT peer, reference_id, COUNT(*) AS roots FROM object_version WHERE previous_version IS NULL
      GROUP BY peer, reference_id HAVING COUNT(*) > 1`,
    describe: (r) => `object ${s(r['peer'])}/${s(r['reference_id'])}: created ${s(r['roots'])} times`,
  },
  {
    sql: `SELECT peer, reference_id, read_version, COUNT(*) AS readers FROM command_log
      WHERE status = 'success' GROUP BY peer, reference_id, read_version HAVING COUNT(*) > 1`,
    describe: (r) =>
      `object ${s(r['peer'])}/${s(r['reference_id'])}: version ${s(r['read_version'])} read by ` +
      `${s(r['readers'])} successful commands`,
  },
  {
    sql: `SELECT DISTINCT v.peer, v.reference_id FROM object_version v
      LEFT JOIN object_head h ON h.peer = v.peer AND h.reference_id = v.reference_id
      WHERE h.peer IS NULL`,
    describe: (r) => `object ${s(r['peer'])}/${s(r['reference_id'])}: has versions but no head`,
  },
  {
    sql: `SELECT h.peer, h.reference_id, h.head_version, h.open, v.open AS version_open FROM object_head h
      LEFT JOIN object_version v ON v.peer = h.peer AND v.reference_id = h.reference_id
        AND v.version = h.head_version
      WHERE v.version IS NULL OR v.open <> h.open`,
    describe: (r) =>
      `head ${s(r['peer'])}/${s(r['reference_id'])}@${s(r['head_version'])}: ` +
      (r['version_open'] === null || r['version_open'] === undefined
        ? 'head version does not exist'
        : `open=${s(r['open'])} but the version says ${s(r['version_open'])}`),
  },
  {
    sql: `SELECT h.peer, h.reference_id, h.head_version, n.version AS next_version FROM object_head h
      JOIN object_version n ON n.peer = h.peer AND n.reference_id = h.reference_id
        AND n.previous_version = h.head_version`,
    describe: (r) =>
      `head ${s(r['peer'])}/${s(r['reference_id'])}@${s(r['head_version'])}: not the end of its ` +
      `chain (${s(r['next_version'])} follows it)`,
  },
  {
    sql: `SELECT h.peer, h.reference_id, h.version_count, COUNT(v.version) AS versions FROM object_head h
      LEFT JOIN object_version v ON v.peer = h.peer AND v.reference_id = h.reference_id
      GROUP BY h.peer, h.reference_id, h.version_count HAVING COUNT(v.version) <> h.version_count`,
    describe: (r) =>
      `head ${s(r['peer'])}/${s(r['reference_id'])}: versionCount ${s(r['version_count'])} but ` +
      `${s(r['versions'])} versions stored`,
  },
  {
    sql: `SELECT o.peer, o.cid FROM outbox o JOIN command_log l ON l.peer = o.peer AND l.cid = o.cid`,
    describe: (r) => `outbox ${s(r['peer'])}/${s(r['cid'])}: still queued but already final in the log`,
  },
];

/**
 * Runs every check and returns one human-readable line per violation (empty when consistent).
 * See `ParleyStore.checkIntegrity`.
 */
export async function checkIntegrity(prisma: StoreClient): Promise<string[]> {
  const out: string[] = [];
  for (const check of CHECKS) {
    const rows = await prisma.$queryRawUnsafe<Row[]>(`${check.sql} LIMIT ${MAX_VIOLATIONS_PER_CHECK + 1}`);
    for (const row of rows.slice(0, MAX_VIOLATIONS_PER_CHECK)) out.push(check.describe(row));
    if (rows.length > MAX_VIOLATIONS_PER_CHECK)
      out.push(`… more of the above (${MAX_VIOLATIONS_PER_CHECK} shown)`);
  }
  return out;
}
