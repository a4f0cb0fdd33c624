/**
 * One channel's rows of a node's database, in a stable order, for comparing two nodes' copies
 * of the same channel (the restore tests): signed log, versions (objects parsed: the proposer
 * stores the JSON it built, the other side the decoded one) and heads.
 */

/** Raw SQL on a database behind the store's back (a stopped node's). */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
}

export interface ChannelTables {
  log: Array<Record<string, unknown>>;
  versions: Array<Record<string, unknown>>;
  heads: Array<Record<string, unknown>>;
}

export async function channelTables(db: Queryable, peer: string): Promise<ChannelTables> {
  const log = await db.query(
    `SELECT cid, direction, reference_id AS ref, read_version AS read, write_version AS write,
            request_jws AS request, response_jws AS response, status, error_code AS code
       FROM command_log WHERE peer = '${peer}' ORDER BY cid`,
  );
  const versions = (
    await db.query<{ payment: string }>(
      `SELECT reference_id AS ref, version, previous_version AS previous, open, payment
         FROM object_version WHERE peer = '${peer}' ORDER BY reference_id, version`,
    )
  ).map((v) => ({
    ...v,
    open: Boolean(v['open' as keyof typeof v]),
    payment: JSON.parse(v.payment) as unknown,
  }));
  const heads = (
    await db.query(
      `SELECT reference_id AS ref, head_version AS head, open, version_count AS count
         FROM object_head WHERE peer = '${peer}' ORDER BY reference_id`,
    )
  ).map((h) => ({ ...h, open: Boolean(h['open']), count: Number(h['count']) }));
  return { log, versions, heads };
}
